-- Invalid-traffic rate of one source: share of the window's events flagged with an ivt_reason.
SELECT '' AS subject,
       avg((ivt_reason IS NOT NULL)::DOUBLE) AS value,
       count(*) AS n
FROM {table}
WHERE event_time >= $end - to_seconds($window) AND event_time < $end AND ingested_at <= $as_of
