-- The hours whose rollups new events (batches not yet folded in) or changed creatives can
-- change (the events of a changed creative or of its campaigns count as new): the events' own
-- hours, and the hours of the events whose attribution they can move:
-- clicks and conversions of the same user after a new impression (within the click lookback
-- plus the click-through window, or the view-through window), conversions after a new click,
-- bid requests a new impression may have won, impressions a new bid request may have won.
CREATE OR REPLACE TEMP TABLE _scope AS
WITH fresh AS (
  SELECT batch_id FROM batches ANTI JOIN rollup_batches USING (batch_id)
), changed AS (
  SELECT creative_id FROM (
    SELECT creative_id, campaign_id, advertiser_id FROM creatives
    EXCEPT SELECT creative_id, campaign_id, advertiser_id FROM rollup_creatives
    UNION ALL
    SELECT creative_id, campaign_id, advertiser_id FROM rollup_creatives
    EXCEPT SELECT creative_id, campaign_id, advertiser_id FROM creatives
  )
), changed_campaigns AS (
  -- a campaign's advertiser may have moved: every event of it takes the new one
  SELECT campaign_id FROM creatives WHERE creative_id IN (SELECT creative_id FROM changed)
  UNION SELECT campaign_id FROM rollup_creatives
  WHERE creative_id IN (SELECT creative_id FROM changed)
), n AS (
  SELECT event_id, event_time, user_id, bid_request_id FROM impressions
  WHERE batch_id IN (SELECT batch_id FROM fresh) OR creative_id IN (SELECT creative_id FROM changed)
     OR campaign_id IN (SELECT campaign_id FROM changed_campaigns)
), k AS (
  SELECT event_id, event_time, user_id FROM clicks_conversions
  WHERE event_type = 'click' AND batch_id IN (SELECT batch_id FROM fresh)
), b AS (
  SELECT event_id, event_time, user_id FROM bid_requests
  WHERE batch_id IN (SELECT batch_id FROM fresh) OR creative_id IN (SELECT creative_id FROM changed)
), moved_clicks AS (
  SELECT c.event_time, c.user_id FROM clicks_conversions c JOIN n
    ON c.user_id = n.user_id AND c.event_type = 'click'
   AND c.event_time BETWEEN n.event_time AND n.event_time + to_seconds($lookback_s)
  UNION ALL
  SELECT c.event_time, c.user_id FROM clicks_conversions c JOIN n ON c.impression_id = n.event_id
  UNION ALL
  SELECT event_time, user_id FROM k
), t AS (
  SELECT event_time FROM clicks_conversions
  WHERE batch_id IN (SELECT batch_id FROM fresh)
     OR campaign_id IN (SELECT campaign_id FROM changed_campaigns)
  UNION ALL SELECT event_time FROM n
  UNION ALL SELECT event_time FROM b
  UNION ALL SELECT event_time FROM moved_clicks
  UNION ALL
  SELECT v.event_time FROM clicks_conversions v JOIN moved_clicks m
    ON v.user_id = m.user_id AND v.event_type <> 'click'
   AND v.event_time BETWEEN m.event_time AND m.event_time + to_seconds($click_through_s)
  UNION ALL
  SELECT v.event_time FROM clicks_conversions v JOIN n
    ON v.user_id = n.user_id AND v.event_type <> 'click'
   AND v.event_time BETWEEN n.event_time AND n.event_time + to_seconds($view_through_s)
  UNION ALL
  SELECT r.event_time FROM bid_requests r JOIN n ON r.event_id = n.bid_request_id
  UNION ALL
  SELECT r.event_time FROM bid_requests r JOIN n
    ON r.user_id = n.user_id
   AND r.event_time BETWEEN n.event_time - to_seconds($bid_match_s) AND n.event_time
  UNION ALL
  SELECT i.event_time FROM impressions i JOIN b ON i.bid_request_id = b.event_id
  UNION ALL
  SELECT i.event_time FROM impressions i JOIN b
    ON i.user_id = b.user_id
   AND i.event_time BETWEEN b.event_time AND b.event_time + to_seconds($bid_match_s)
)
SELECT DISTINCT date_trunc('hour', event_time) AS hour FROM t
