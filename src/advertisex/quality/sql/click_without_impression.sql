-- Clicks of the window that name an impression the store does not hold (looked for up to a day before).
SELECT '' AS subject,
       avg((i.event_id IS NULL)::DOUBLE) AS value,
       count(*) AS n
FROM clicks_conversions c
LEFT JOIN (
  SELECT event_id FROM impressions
  WHERE event_time >= $end - to_seconds($window) - INTERVAL 1 DAY AND event_time < $end
    AND ingested_at <= $as_of
) i ON i.event_id = c.impression_id
WHERE c.event_type = 'click' AND c.impression_id IS NOT NULL
  AND c.event_time >= $end - to_seconds($window) AND c.event_time < $end
  AND c.ingested_at <= $as_of
