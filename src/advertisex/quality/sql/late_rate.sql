-- Late-event rate of one source: share of the last window's arrivals older than $late seconds.
SELECT '' AS subject,
       avg((date_diff('second', event_time, ingested_at) > $late)::DOUBLE) AS value,
       count(*) AS n
FROM {table}
WHERE ingested_at > $as_of - to_seconds($window) AND ingested_at <= $as_of
