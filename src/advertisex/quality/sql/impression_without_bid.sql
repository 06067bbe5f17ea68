-- Impressions of the window that name a bid request the store does not hold (looked for an hour before).
SELECT '' AS subject,
       avg((b.event_id IS NULL)::DOUBLE) AS value,
       count(*) AS n
FROM impressions i
LEFT JOIN (
  SELECT event_id FROM bid_requests
  WHERE event_time >= $end - to_seconds($window) - INTERVAL 1 HOUR AND event_time < $end
    AND ingested_at <= $as_of
) b ON b.event_id = i.bid_request_id
WHERE i.bid_request_id IS NOT NULL
  AND i.event_time >= $end - to_seconds($window) AND i.event_time < $end
  AND i.ingested_at <= $as_of
