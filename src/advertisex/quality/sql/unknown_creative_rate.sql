-- Impressions of the window whose creative is not in the creatives dimension (when it is loaded).
SELECT '' AS subject,
       avg((c.creative_id IS NULL)::DOUBLE) AS value,
       count(*) AS n
FROM impressions i
LEFT JOIN creatives c USING (creative_id)
WHERE i.event_time >= $end - to_seconds($window) AND i.event_time < $end
  AND i.ingested_at <= $as_of
  AND EXISTS (SELECT 1 FROM creatives)
