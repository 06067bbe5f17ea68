-- Won auctions of the window (up to $grace before $end, so impressions can follow) with no impression.
SELECT '' AS subject,
       avg((i.bid_request_id IS NULL)::DOUBLE) AS value,
       count(*) AS n
FROM bid_requests b
LEFT JOIN (
  SELECT DISTINCT bid_request_id FROM impressions
  WHERE bid_request_id IS NOT NULL
    AND event_time >= $end - to_seconds($window) - INTERVAL 1 HOUR AND ingested_at <= $as_of
) i ON i.bid_request_id = b.event_id
WHERE b.won
  AND b.event_time >= $end - to_seconds($window) - to_seconds($grace)
  AND b.event_time < $end - to_seconds($grace)
  AND b.ingested_at <= $as_of
