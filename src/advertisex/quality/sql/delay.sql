-- Delay of one source: 95th percentile of arrival minus event time, over the last window's arrivals.
SELECT '' AS subject,
       quantile_cont(date_diff('second', event_time, ingested_at), 0.95)::DOUBLE AS value,
       count(*) AS n
FROM {table}
WHERE ingested_at > $as_of - to_seconds($window) AND ingested_at <= $as_of
