-- Reject rate of one source over the last window's arrivals: in all (subject empty) and by
-- reason and field (subject "reason" or "reason:field", e.g. missing_field:user_id for a
-- required field going missing, invalid_value:value for a field changing type).
WITH r AS (
  SELECT reason || coalesce(':' || field, '') AS subject, count(*) AS k
  FROM rejects
  WHERE source = '{source}' AND rejected_at > $as_of - to_seconds($window) AND rejected_at <= $as_of
  GROUP BY ALL
), total AS (
  SELECT (SELECT coalesce(sum(k), 0) FROM r)
       + (SELECT count(*) FROM {table}
          WHERE ingested_at > $as_of - to_seconds($window) AND ingested_at <= $as_of) AS n
)
SELECT '' AS subject, (SELECT coalesce(sum(k), 0) FROM r) / nullif(n, 0) AS value, n
FROM total
UNION ALL
SELECT subject, k / nullif(n, 0), n FROM r, total
