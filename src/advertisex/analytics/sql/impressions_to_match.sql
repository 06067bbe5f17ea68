-- A scoped run's impressions to match with the bid request that won them, besides those of the
-- hours in scope: those of other hours that bid requests in scope may have won (by id, or by
-- user, creative and site within bid_match_s). Few, so a table; _imp_todo adds the hours in
-- scope to them (or is every impression, in a full run).
CREATE OR REPLACE TEMP TABLE _imp_also AS
WITH b AS (
  SELECT event_id, event_time, user_id, creative_id, site
  FROM bid_requests
  WHERE _in_scope(event_time)
)
SELECT event_id, event_time, user_id, creative_id, site, bid_request_id
FROM impressions
WHERE NOT _in_scope(event_time) AND bid_request_id IN (SELECT event_id FROM b)
UNION
SELECT i.event_id, i.event_time, i.user_id, i.creative_id, i.site, i.bid_request_id
FROM impressions i JOIN b
  ON i.bid_request_id IS NULL AND i.user_id = b.user_id AND i.creative_id = b.creative_id
 AND i.site = b.site
 AND i.event_time BETWEEN b.event_time AND b.event_time + to_seconds($bid_match_s)
WHERE NOT _in_scope(i.event_time)
