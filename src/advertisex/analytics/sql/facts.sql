-- The rollup keys and measures of each event, one relation per source, over the attribution in
-- the views _attr_clicks, _attr_conversions and _attr_bids (the refresh's temp tables or the
-- stored ones). Clicks and conversions take creative, site, country and device from the
-- impression they are attributed to (a conversion: its primary touch, or the impression of its
-- touched click) when they carry none themselves; campaign is always their own. An event is
-- invalid traffic (ivt) when it or that impression carries an ivt_reason. Clicks,
-- conversions and bid requests are kept in temp tables, limited to the events _in_facts(ts)
-- keeps; the impressions (many) are a view that each rollup filters and sums on its own.

-- Spend: the impression's own CPM price, else its winning bid's clearing price, else the bid
-- amount. Only impressions without a price look up their bid, once (each rollup reads the view).
CREATE OR REPLACE TEMP TABLE _bid_spend AS
SELECT i.event_id, coalesce(m.win_price_micros, m.bid_amount_micros) AS spend_cpm_micros
FROM impressions i JOIN _attr_bids m ON m.impression_id = i.event_id
WHERE i.price_micros IS NULL AND _in_facts(i.event_time);

CREATE OR REPLACE TEMP VIEW _imp_facts AS
SELECT date_trunc('hour', i.event_time) AS hour, CAST(i.event_time AS DATE) AS day, i.event_time,
       i.campaign_id, i.advertiser_id, i.creative_id, i.site, i.country, i.device_type,
       i.ivt_reason IS NOT NULL AS ivt,
       coalesce(i.price_micros, s.spend_cpm_micros) AS spend_cpm_micros
FROM _imp i LEFT JOIN _bid_spend s ON s.event_id = i.event_id;

-- The impressions that clicks and conversions are attributed to, fetched in one pass.
CREATE OR REPLACE TEMP TABLE _touched AS
SELECT i.* FROM _imp i
SEMI JOIN (
  SELECT impression_id AS event_id FROM _attr_clicks
  UNION ALL SELECT touch_id FROM _attr_conversions WHERE touch = 'view'
) USING (event_id);

CREATE OR REPLACE TEMP TABLE _click_facts AS
SELECT date_trunc('hour', c.event_time) AS hour, CAST(c.event_time AS DATE) AS day, c.event_time,
       c.campaign_id, cp.advertiser_id, coalesce(c.creative_id, i.creative_id) AS creative_id,
       i.site, coalesce(c.country, i.country) AS country,
       coalesce(c.device_type, i.device_type) AS device_type,
       c.ivt_reason IS NOT NULL OR i.ivt_reason IS NOT NULL AS ivt,
       a.impression_id IS NULL AS unattributed
FROM clicks_conversions c
JOIN _attr_clicks a ON a.click_id = c.event_id
LEFT JOIN _touched i ON i.event_id = a.impression_id
LEFT JOIN _campaigns cp ON cp.campaign_id = c.campaign_id
WHERE c.event_type = 'click' AND _in_facts(c.event_time);

CREATE OR REPLACE TEMP TABLE _conv_facts AS
SELECT date_trunc('hour', c.event_time) AS hour, CAST(c.event_time AS DATE) AS day, c.event_time,
       c.campaign_id, cp.advertiser_id, coalesce(c.creative_id, i.creative_id) AS creative_id,
       i.site, coalesce(c.country, i.country) AS country,
       coalesce(c.device_type, i.device_type) AS device_type,
       c.ivt_reason IS NOT NULL OR i.ivt_reason IS NOT NULL AS ivt,
       c.event_type AS conversion_type, a.touch IS NULL AS unattributed, c.value_micros
FROM clicks_conversions c
JOIN _attr_conversions a ON a.conversion_id = c.event_id AND a.primary_touch
LEFT JOIN _attr_clicks k ON a.touch = 'click' AND k.click_id = a.touch_id
LEFT JOIN _touched i
  ON i.event_id = CASE WHEN a.touch = 'view' THEN a.touch_id ELSE k.impression_id END
LEFT JOIN _campaigns cp ON cp.campaign_id = c.campaign_id
WHERE c.event_type <> 'click' AND _in_facts(c.event_time);

-- A bid request won when it says so or when an impression was attributed to it. (A table:
-- every rollup reads the bid requests, and the joins cost more than the copy.)
CREATE OR REPLACE TEMP TABLE _bid_facts AS
SELECT date_trunc('hour', b.event_time) AS hour, CAST(b.event_time AS DATE) AS day, b.event_time,
       cr.campaign_id, cr.advertiser_id, b.creative_id, b.site, b.country, b.device_type,
       b.ivt_reason IS NOT NULL AS ivt, coalesce(b.bid_amount_micros > 0, false) AS bid,
       coalesce(b.won, false) OR w.auction_id IS NOT NULL AS won
FROM bid_requests b
LEFT JOIN creatives cr ON cr.creative_id = b.creative_id
LEFT JOIN (SELECT DISTINCT auction_id FROM _attr_bids WHERE _in_facts(bid_time)) w
  ON w.auction_id = b.event_id
WHERE _in_facts(b.event_time);
