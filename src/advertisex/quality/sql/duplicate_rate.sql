-- Duplicate rate of one source: duplicates over records received, in batches committed in the last window.
SELECT '' AS subject,
       sum(duplicates) / nullif(sum(received), 0) AS value,
       coalesce(sum(received), 0) AS n
FROM batches
WHERE source = '{source}' AND committed_at > $as_of - to_seconds($window) AND committed_at <= $as_of
