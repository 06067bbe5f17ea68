-- Clicks in scope (and the clicks that conversions in scope touch) -> the impression that
-- earned them: the one they name by impression_id, else the latest impression of the same user
-- and campaign (and creative, when the click names one) within the lookback window, ties to
-- the greater event_id.
CREATE OR REPLACE TEMP TABLE _click_attr AS
WITH c AS (
  SELECT event_id, event_time, user_id, campaign_id, creative_id, impression_id
  FROM clicks_conversions
  WHERE event_type = 'click'
    AND (_in_scope(event_time)
         OR event_id IN (SELECT touch_id FROM _conv_attr WHERE touch = 'click'))
), direct AS (
  SELECT c.event_id AS click_id, i.event_id AS impression_id, i.event_time AS impression_time,
         'impression_id' AS method
  FROM c JOIN impressions i ON i.event_id = c.impression_id
  QUALIFY row_number() OVER (PARTITION BY c.event_id ORDER BY i.event_time DESC) = 1
), lookback AS (
  SELECT c.event_id AS click_id, i.event_id AS impression_id, i.event_time AS impression_time,
         'lookback' AS method
  FROM c JOIN _imp_of_users i
    ON i.user_id = c.user_id AND i.campaign_id = c.campaign_id
   AND i.event_time BETWEEN c.event_time - to_seconds($lookback_s) AND c.event_time
   AND (c.creative_id IS NULL OR i.creative_id = c.creative_id)
  WHERE c.event_id NOT IN (SELECT click_id FROM direct)
  QUALIFY row_number() OVER (PARTITION BY c.event_id ORDER BY i.event_time DESC, i.event_id DESC)
    = 1
)
SELECT c.event_id AS click_id, c.event_time AS click_time, a.impression_id, a.impression_time,
       a.method, epoch(c.event_time) - epoch(a.impression_time) AS lag_seconds
FROM c LEFT JOIN (SELECT * FROM direct UNION ALL SELECT * FROM lookback) a
  ON a.click_id = c.event_id
