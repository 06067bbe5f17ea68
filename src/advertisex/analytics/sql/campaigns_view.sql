-- Campaign -> advertiser, from the creatives dimension (a campaign has one advertiser).
CREATE OR REPLACE TEMP VIEW _campaigns AS
SELECT campaign_id, min(advertiser_id) AS advertiser_id
FROM creatives
GROUP BY campaign_id
