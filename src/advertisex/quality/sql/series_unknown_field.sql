-- Share of the sampled records of one source that carried a field its contract does not know
-- (subject: the field's path; $known: the contract's paths) in the window ending at $end
-- (d = 0) and the same window d days before. From field_stats (pipeline/profile.py).
WITH f AS (
  SELECT field, n, date_diff('second', minute, $end) - 1 AS age
  FROM field_stats
  WHERE source = '{source}' AND minute >= $end - to_days($days + 1) AND minute < $end
    AND ingested_at <= $as_of
),
w AS (SELECT field, n, age // 86400 AS d FROM f WHERE age - (age // 86400) * 86400 < $window),
sampled AS (SELECT d, sum(n) AS n FROM w WHERE field = '' GROUP BY d)
SELECT w.field AS subject, w.d, sum(w.n) / any_value(s.n) AS value, any_value(s.n) AS n
FROM w JOIN sampled s USING (d)
WHERE w.field <> '' AND NOT list_contains($known, w.field)
GROUP BY w.field, w.d
