-- Events of one source in the window ending at $end (d = 0) and the same window d days before.
SELECT '' AS subject, d, count(*)::DOUBLE AS value, count(*) AS n
FROM (
  SELECT age // 86400 AS d, age
  FROM (
    SELECT date_diff('second', event_time, $end) - 1 AS age
    FROM {table}
    WHERE event_time >= $end - to_days($days + 1) AND event_time < $end AND ingested_at <= $as_of
  )
)
WHERE age - d * 86400 < $window
GROUP BY ALL
