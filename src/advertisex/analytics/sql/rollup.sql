-- One rollup: the measures of the events that {scope} keeps, summed by {keys} (the rollup's
-- key columns, from the facts). Each source is summed by the keys first, so that the union
-- that adds the sources up is as small as the rollup.
WITH imp AS (
  SELECT {keys}, count(*) AS impressions, sum(spend_cpm_micros) AS spend_cpm_micros
  FROM _imp_facts WHERE {scope} GROUP BY ALL
), clk AS (
  SELECT {keys}, count(*) AS clicks, count(*) FILTER (unattributed) AS unattributed_clicks
  FROM _click_facts WHERE {scope} GROUP BY ALL
), conv AS (
  SELECT {keys}, count(*) AS conversions,
         count(*) FILTER (unattributed) AS unattributed_conversions,
         sum(value_micros) AS revenue_micros
  FROM _conv_facts WHERE {scope} GROUP BY ALL
), bid AS (
  SELECT {keys}, count(*) AS bid_requests, count(*) FILTER (bid) AS bids,
         count(*) FILTER (won) AS wins
  FROM _bid_facts WHERE {scope} GROUP BY ALL
)
SELECT {keys},
       coalesce(sum(bid_requests), 0)::BIGINT AS bid_requests,
       coalesce(sum(bids), 0)::BIGINT AS bids,
       coalesce(sum(wins), 0)::BIGINT AS wins,
       coalesce(sum(impressions), 0)::BIGINT AS impressions,
       coalesce(sum(spend_cpm_micros), 0)::BIGINT AS spend_cpm_micros,
       coalesce(sum(clicks), 0)::BIGINT AS clicks,
       coalesce(sum(unattributed_clicks), 0)::BIGINT AS unattributed_clicks,
       coalesce(sum(conversions), 0)::BIGINT AS conversions,
       coalesce(sum(unattributed_conversions), 0)::BIGINT AS unattributed_conversions,
       coalesce(sum(revenue_micros), 0)::BIGINT AS revenue_micros
FROM (
  SELECT * FROM imp
  UNION ALL BY NAME SELECT * FROM clk
  UNION ALL BY NAME SELECT * FROM conv
  UNION ALL BY NAME SELECT * FROM bid
)
GROUP BY ALL
