-- Freshness of one source: seconds from its newest event (that had arrived by $as_of) to $as_of.
SELECT '' AS subject,
       date_diff('second', max(event_time), $as_of)::DOUBLE AS value,
       count(*) AS n
FROM {table}
WHERE ingested_at <= $as_of AND event_time <= $as_of
