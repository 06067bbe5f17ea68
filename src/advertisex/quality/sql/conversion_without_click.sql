-- Conversions of the window with no click or impression of the same user and campaign in the day before.
WITH conv AS (
  SELECT user_id, campaign_id, event_time FROM clicks_conversions
  WHERE event_type <> 'click'
    AND event_time >= $end - to_seconds($window) AND event_time < $end AND ingested_at <= $as_of
), touch AS (
  SELECT DISTINCT user_id, campaign_id FROM clicks_conversions
  WHERE event_type = 'click' AND event_time >= $end - to_seconds($window) - INTERVAL 1 DAY
    AND event_time < $end AND ingested_at <= $as_of
  UNION
  SELECT DISTINCT i.user_id, coalesce(i.campaign_id, d.campaign_id) FROM impressions i
  LEFT JOIN creatives d USING (creative_id)
  WHERE i.event_time >= $end - to_seconds($window) - INTERVAL 1 DAY
    AND i.event_time < $end AND i.ingested_at <= $as_of
)
SELECT '' AS subject,
       avg((t.user_id IS NULL)::DOUBLE) AS value,
       count(*) AS n
FROM conv c LEFT JOIN touch t USING (user_id, campaign_id)
