-- The impressions to match (_imp_todo) -> the bid request that won them: the one named by
-- bid_request_id; for an impression that names none, the latest bid request of the same user,
-- creative and site at most bid_match_s before it, ties to the greater event_id. (An impression
-- naming an auction the store lacks stays unmatched.) _imp_todo is read once per branch rather
-- than as a shared CTE: a full run's 10 M impressions are then streamed, not materialized.
CREATE OR REPLACE TEMP TABLE _imp_bid AS
WITH direct AS (
  SELECT i.event_id AS impression_id, i.event_time AS impression_time, r.event_id AS auction_id,
         'bid_request_id' AS method,
         r.event_time AS bid_time, r.bid_amount_micros, r.win_price_micros
  FROM _imp_todo i JOIN bid_requests r ON r.event_id = i.bid_request_id
  QUALIFY row_number() OVER (PARTITION BY i.event_id ORDER BY r.event_time DESC) = 1
), near AS (
  SELECT i.event_id AS impression_id, i.event_time AS impression_time, r.event_id AS auction_id,
         'window' AS method,
         r.event_time AS bid_time, r.bid_amount_micros, r.win_price_micros
  FROM _imp_todo i JOIN bid_requests r
    ON r.user_id = i.user_id AND r.creative_id = i.creative_id AND r.site = i.site
   AND r.event_time BETWEEN i.event_time - to_seconds($bid_match_s) AND i.event_time
  WHERE i.bid_request_id IS NULL
  QUALIFY row_number() OVER (PARTITION BY i.event_id ORDER BY r.event_time DESC, r.event_id DESC)
    = 1
)
SELECT impression_id, impression_time, auction_id, bid_time, method, bid_amount_micros,
       win_price_micros
FROM (SELECT * FROM direct UNION ALL SELECT * FROM near)
