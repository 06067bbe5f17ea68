-- Null rate of each optional column of one source (subject: the column) in the window ending
-- at $end (d = 0) and the same window d days before.
UNPIVOT (
  SELECT d, count(*) AS n, {null_rates}
  FROM (
    SELECT *, age // 86400 AS d
    FROM (
      SELECT {columns}, date_diff('second', event_time, $end) - 1 AS age
      FROM {table}
      WHERE event_time >= $end - to_days($days + 1) AND event_time < $end
        AND ingested_at <= $as_of
    )
  )
  WHERE age - d * 86400 < $window
  GROUP BY d
) ON {columns} INTO NAME subject VALUE value
