-- A rollup summed from a finer hourly one ({of}): its rows that {scope} keeps, by {keys}
-- (day is the day of the hour).
SELECT {keys},
       sum(bid_requests)::BIGINT AS bid_requests, sum(bids)::BIGINT AS bids,
       sum(wins)::BIGINT AS wins, sum(impressions)::BIGINT AS impressions,
       sum(spend_cpm_micros)::BIGINT AS spend_cpm_micros, sum(clicks)::BIGINT AS clicks,
       sum(unattributed_clicks)::BIGINT AS unattributed_clicks,
       sum(conversions)::BIGINT AS conversions,
       sum(unattributed_conversions)::BIGINT AS unattributed_conversions,
       sum(revenue_micros)::BIGINT AS revenue_micros
FROM (SELECT CAST(hour AS DATE) AS day, * FROM {of})
WHERE {scope}
GROUP BY ALL
