-- The seasonal band of a series (subject, d, value, n): the current window's value (d = 0)
-- against the median and the median absolute deviation of the same window on the previous
-- $covered days. Missing days count as {fill}.
WITH s AS ({series}),
subjects AS (SELECT DISTINCT subject FROM s),
days AS (SELECT unnest(range(0, $covered + 1)) AS d),
grid AS (
  SELECT subject, d, coalesce(s.value, {fill}) AS value, coalesce(s.n, 0) AS n
  FROM subjects CROSS JOIN days LEFT JOIN s USING (subject, d)
),
base AS (
  SELECT subject, median(value) AS baseline, count(value) AS days
  FROM grid WHERE d > 0 GROUP BY subject
),
mad AS (
  SELECT subject, median(abs(g.value - b.baseline)) AS spread
  FROM grid g JOIN base b USING (subject) WHERE g.d > 0 GROUP BY subject
)
SELECT g.subject, g.value, g.n, b.baseline, m.spread, coalesce(b.days, 0) AS days
FROM grid g LEFT JOIN base b USING (subject) LEFT JOIN mad m USING (subject)
WHERE g.d = 0
