-- The daily aggregates of the days in scope, from the hourly ones (`_days` lists the days).
CREATE OR REPLACE TEMP TABLE _rollup_daily AS
SELECT CAST(hour AS DATE) AS day, campaign_id, advertiser_id, country, device_type, ivt,
       sum(bid_requests)::BIGINT AS bid_requests, sum(bids)::BIGINT AS bids,
       sum(wins)::BIGINT AS wins, sum(impressions)::BIGINT AS impressions,
       sum(spend_cpm_micros)::BIGINT AS spend_cpm_micros, sum(clicks)::BIGINT AS clicks,
       sum(unattributed_clicks)::BIGINT AS unattributed_clicks,
       sum(conversions)::BIGINT AS conversions,
       sum(unattributed_conversions)::BIGINT AS unattributed_conversions,
       sum(revenue_micros)::BIGINT AS revenue_micros
FROM rollup_hourly
WHERE CAST(hour AS DATE) IN (SELECT day FROM _days)
GROUP BY ALL
