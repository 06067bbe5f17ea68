-- Impressions of the window whose country (from their IP) differs from their bid request's country.
SELECT '' AS subject,
       avg((upper(i.country) <> upper(b.country))::DOUBLE) AS value,
       count(*) AS n
FROM impressions i
JOIN bid_requests b ON b.event_id = i.bid_request_id
WHERE i.country IS NOT NULL AND b.country IS NOT NULL
  AND i.event_time >= $end - to_seconds($window) AND i.event_time < $end
  AND i.ingested_at <= $as_of AND b.ingested_at <= $as_of
