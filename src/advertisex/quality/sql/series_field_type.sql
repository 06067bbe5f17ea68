-- For each field the contract of one source knows, the share of the sampled records carrying
-- it whose value had each type (subject: field:type, e.g. user_id:varchar) in the window
-- ending at $end (d = 0) and the same window d days before: 0 on a day the field came with
-- other types only, no row on a day it did not come at all. From field_stats.
WITH f AS (
  SELECT field, json_type, n, date_diff('second', minute, $end) - 1 AS age
  FROM field_stats
  WHERE source = '{source}' AND minute >= $end - to_days($days + 1) AND minute < $end
    AND ingested_at <= $as_of AND list_contains($known, field)
),
w AS (
  SELECT field, json_type, n, age // 86400 AS d
  FROM f WHERE age - (age // 86400) * 86400 < $window
),
types AS (SELECT DISTINCT field, json_type FROM w),
carried AS (SELECT field, d, sum(n) AS n FROM w GROUP BY ALL),
typed AS (SELECT field, json_type, d, sum(n) AS n FROM w GROUP BY ALL)
SELECT t.field || ':' || t.json_type AS subject, c.d, coalesce(k.n, 0) / c.n AS value, c.n
FROM types t JOIN carried c USING (field) LEFT JOIN typed k USING (field, json_type, d)
