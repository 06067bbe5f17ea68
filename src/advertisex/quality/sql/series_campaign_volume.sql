-- Impressions per campaign in the window ending at $end (d = 0) and the same window d days before.
SELECT subject, d, count(*)::DOUBLE AS value, count(*) AS n
FROM (
  SELECT subject, age // 86400 AS d, age
  FROM (
    SELECT coalesce(i.campaign_id, c.campaign_id) AS subject,
           date_diff('second', i.event_time, $end) - 1 AS age
    FROM impressions i LEFT JOIN creatives c USING (creative_id)
    WHERE i.event_time >= $end - to_days($days + 1) AND i.event_time < $end
      AND i.ingested_at <= $as_of
  )
)
WHERE age - d * 86400 < $window AND subject IS NOT NULL
GROUP BY ALL
