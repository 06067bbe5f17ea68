-- Impressions with their campaign (their own, else the creative's) and advertiser.
CREATE OR REPLACE TEMP VIEW _imp AS
SELECT i.event_id, i.event_time, i.user_id, i.creative_id,
       coalesce(i.campaign_id, cr.campaign_id) AS campaign_id,
       coalesce(cr.advertiser_id, cp.advertiser_id) AS advertiser_id,
       i.site, i.country, i.device_type, i.ivt_reason, i.bid_request_id, i.price_micros
FROM impressions i
LEFT JOIN creatives cr ON cr.creative_id = i.creative_id
LEFT JOIN _campaigns cp ON cp.campaign_id = i.campaign_id
