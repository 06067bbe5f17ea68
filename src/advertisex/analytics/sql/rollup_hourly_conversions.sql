-- Conversions and revenue by conversion type, by hour x campaign x creative x site x country x
-- device (conversions are few: the finest grain costs little).
SELECT hour, campaign_id, advertiser_id, creative_id, site, country, device_type, ivt,
       conversion_type, count(*) AS conversions,
       coalesce(sum(value_micros), 0)::BIGINT AS revenue_micros
FROM _conv_facts
WHERE _in_hours(event_time)
GROUP BY ALL
