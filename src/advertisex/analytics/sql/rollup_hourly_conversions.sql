-- Conversions and revenue by conversion type, same keys as rollup_hourly.
SELECT hour, campaign_id, advertiser_id, creative_id, site, country, device_type, ivt,
       conversion_type, count(*) AS conversions,
       coalesce(sum(value_micros), 0)::BIGINT AS revenue_micros
FROM _facts
WHERE kind = 'conversion'
GROUP BY ALL
