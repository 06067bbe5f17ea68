-- Click-through rate per campaign (clicks / impressions) in the window ending at $end (d = 0)
-- and the same window d days before; n is the impressions.
WITH imp AS (
  SELECT subject, age // 86400 AS d, count(*) AS imps
  FROM (
    SELECT coalesce(i.campaign_id, c.campaign_id) AS subject,
           date_diff('second', i.event_time, $end) - 1 AS age
    FROM impressions i LEFT JOIN creatives c USING (creative_id)
    WHERE i.event_time >= $end - to_days($days + 1) AND i.event_time < $end
      AND i.ingested_at <= $as_of
  )
  WHERE age - (age // 86400) * 86400 < $window AND subject IS NOT NULL
  GROUP BY ALL
), clk AS (
  SELECT subject, age // 86400 AS d, count(*) AS clicks
  FROM (
    SELECT campaign_id AS subject, date_diff('second', event_time, $end) - 1 AS age
    FROM clicks_conversions
    WHERE event_type = 'click' AND event_time >= $end - to_days($days + 1) AND event_time < $end
      AND ingested_at <= $as_of
  )
  WHERE age - (age // 86400) * 86400 < $window
  GROUP BY ALL
)
SELECT subject, d, coalesce(clicks, 0) / imps AS value, imps AS n
FROM imp LEFT JOIN clk USING (subject, d)
