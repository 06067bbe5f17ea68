-- One row per event in scope with the rollup keys and what it adds, from the attribution above
-- (user_id only on impressions: the rollups count distinct users of impressions).
-- Clicks and conversions take creative, site, country and device from the impression they are
-- attributed to (a conversion: its primary touch, or the impression of its touched click) when
-- they carry none themselves; campaign is always their own. An event is invalid traffic (ivt)
-- when it or that impression carries an ivt_reason.
CREATE OR REPLACE TEMP VIEW _facts AS
WITH imp AS (
  SELECT date_trunc('hour', i.event_time) AS hour, i.campaign_id, i.advertiser_id,
         i.creative_id, i.site, i.country, i.device_type, i.ivt_reason IS NOT NULL AS ivt,
         'impression' AS kind, NULL AS conversion_type, i.user_id,
         coalesce(i.price_micros, m.win_price_micros, m.bid_amount_micros) AS spend_cpm_micros,
         false AS unattributed, NULL::BIGINT AS value_micros, false AS bid, false AS won
  FROM _imp i LEFT JOIN _imp_bid m ON m.impression_id = i.event_id
  WHERE _in_scope(i.event_time)
), clk AS (
  SELECT date_trunc('hour', c.event_time) AS hour, c.campaign_id, cp.advertiser_id,
         coalesce(c.creative_id, i.creative_id) AS creative_id, i.site,
         coalesce(c.country, i.country) AS country,
         coalesce(c.device_type, i.device_type) AS device_type,
         c.ivt_reason IS NOT NULL OR i.ivt_reason IS NOT NULL AS ivt,
         'click' AS kind, NULL AS conversion_type, NULL AS user_id, NULL::BIGINT AS spend_cpm_micros,
         a.impression_id IS NULL AS unattributed, NULL::BIGINT AS value_micros,
         false AS bid, false AS won
  FROM clicks_conversions c
  JOIN _click_attr a ON a.click_id = c.event_id
  LEFT JOIN _imp i ON i.event_id = a.impression_id
  LEFT JOIN _campaigns cp ON cp.campaign_id = c.campaign_id
  WHERE c.event_type = 'click' AND _in_scope(c.event_time)
), conv AS (
  SELECT date_trunc('hour', c.event_time) AS hour, c.campaign_id, cp.advertiser_id,
         coalesce(c.creative_id, i.creative_id) AS creative_id, i.site,
         coalesce(c.country, i.country) AS country,
         coalesce(c.device_type, i.device_type) AS device_type,
         c.ivt_reason IS NOT NULL OR i.ivt_reason IS NOT NULL AS ivt,
         'conversion' AS kind, c.event_type AS conversion_type, NULL AS user_id,
         NULL::BIGINT AS spend_cpm_micros, a.touch IS NULL AS unattributed, c.value_micros,
         false AS bid, false AS won
  FROM clicks_conversions c
  JOIN _conv_attr a ON a.conversion_id = c.event_id AND a.primary_touch
  LEFT JOIN _click_attr k ON a.touch = 'click' AND k.click_id = a.touch_id
  LEFT JOIN _imp i
    ON i.event_id = CASE WHEN a.touch = 'view' THEN a.touch_id ELSE k.impression_id END
  LEFT JOIN _campaigns cp ON cp.campaign_id = c.campaign_id
  WHERE c.event_type <> 'click' AND _in_scope(c.event_time)
), bid AS (
  SELECT date_trunc('hour', b.event_time) AS hour, cr.campaign_id, cr.advertiser_id,
         b.creative_id, b.site, b.country, b.device_type, b.ivt_reason IS NOT NULL AS ivt,
         'bid_request' AS kind, NULL AS conversion_type, NULL AS user_id,
         NULL::BIGINT AS spend_cpm_micros, false AS unattributed, NULL::BIGINT AS value_micros,
         coalesce(b.bid_amount_micros > 0, false) AS bid,
         coalesce(b.won, false) OR w.auction_id IS NOT NULL AS won
  FROM bid_requests b
  LEFT JOIN creatives cr ON cr.creative_id = b.creative_id
  LEFT JOIN (SELECT DISTINCT auction_id FROM _imp_bid) w ON w.auction_id = b.event_id
  WHERE _in_scope(b.event_time)
)
SELECT * FROM imp
UNION ALL SELECT * FROM clk
UNION ALL SELECT * FROM conv
UNION ALL SELECT * FROM bid
