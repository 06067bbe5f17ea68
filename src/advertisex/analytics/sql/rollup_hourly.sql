-- The hourly aggregates of the facts in scope, in two steps so that the count of distinct users
-- is a count of groups: first per user (only impressions carry one here), then per rollup key.
-- (Exact: DuckDB's HyperLogLog state, approx_count_distinct, is kilobytes per group, and here
-- nearly every event is a group of its own.)

WITH per_user AS (
  SELECT hour, campaign_id, advertiser_id, creative_id, site, country, device_type, ivt, kind,
         user_id, count(*) AS n, count(*) FILTER (bid) AS bids, count(*) FILTER (won) AS wins,
         count(*) FILTER (unattributed) AS unattributed,
         sum(spend_cpm_micros) AS spend_cpm_micros, sum(value_micros) AS value_micros
  FROM _facts
  GROUP BY ALL
)
SELECT hour, campaign_id, advertiser_id, creative_id, site, country, device_type, ivt,
       coalesce(sum(n) FILTER (kind = 'bid_request'), 0)::BIGINT AS bid_requests,
       coalesce(sum(bids), 0)::BIGINT AS bids,
       coalesce(sum(wins), 0)::BIGINT AS wins,
       coalesce(sum(n) FILTER (kind = 'impression'), 0)::BIGINT AS impressions,
       count(*) FILTER (kind = 'impression') AS unique_users,
       coalesce(sum(spend_cpm_micros), 0)::BIGINT AS spend_cpm_micros,
       coalesce(sum(n) FILTER (kind = 'click'), 0)::BIGINT AS clicks,
       coalesce(sum(unattributed) FILTER (kind = 'click'), 0)::BIGINT AS unattributed_clicks,
       coalesce(sum(n) FILTER (kind = 'conversion'), 0)::BIGINT AS conversions,
       coalesce(sum(unattributed) FILTER (kind = 'conversion'), 0)::BIGINT
         AS unattributed_conversions,
       coalesce(sum(value_micros), 0)::BIGINT AS revenue_micros
FROM per_user
GROUP BY ALL
