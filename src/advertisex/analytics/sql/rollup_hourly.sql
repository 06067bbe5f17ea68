-- The hourly aggregates of the facts in scope.
CREATE OR REPLACE TEMP TABLE _rollup_hourly AS
SELECT hour, campaign_id, advertiser_id, creative_id, site, country, device_type, ivt,
       count(*) FILTER (kind = 'bid_request') AS bid_requests,
       count(*) FILTER (kind = 'bid_request' AND bid) AS bids,
       count(*) FILTER (kind = 'bid_request' AND won) AS wins,
       count(*) FILTER (kind = 'impression') AS impressions,
       count(DISTINCT user_id) FILTER (kind = 'impression') AS unique_users,
       coalesce(sum(spend_cpm_micros), 0)::BIGINT AS spend_cpm_micros,
       count(*) FILTER (kind = 'click') AS clicks,
       count(*) FILTER (kind = 'click' AND unattributed) AS unattributed_clicks,
       count(*) FILTER (kind = 'conversion') AS conversions,
       count(*) FILTER (kind = 'conversion' AND unattributed) AS unattributed_conversions,
       coalesce(sum(value_micros), 0)::BIGINT AS revenue_micros
FROM _facts
GROUP BY ALL
