-- One rollup: the measures of the events that {scope} keeps, summed by {keys} (the rollup's
-- key columns, from the facts). Each source is summed by the keys first, so that the joins
-- that put the sources side by side are as small as the rollup; each sum has one row per key
-- (NULL keys included), so the full outer joins on the keys (NULL equal to NULL) pair them
-- one to one: cheaper than a union of the four summed again.
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
), delivery AS (
  SELECT {keys_i_b}, i.impressions, i.spend_cpm_micros, b.bid_requests, b.bids, b.wins
  FROM imp i FULL JOIN bid b ON {same_i_b}
), response AS (
  SELECT {keys_c_v}, c.clicks, c.unattributed_clicks, v.conversions,
         v.unattributed_conversions, v.revenue_micros
  FROM clk c FULL JOIN conv v ON {same_c_v}
)
SELECT {keys_d_r},
       coalesce(d.bid_requests, 0)::BIGINT AS bid_requests,
       coalesce(d.bids, 0)::BIGINT AS bids,
       coalesce(d.wins, 0)::BIGINT AS wins,
       coalesce(d.impressions, 0)::BIGINT AS impressions,
       coalesce(d.spend_cpm_micros, 0)::BIGINT AS spend_cpm_micros,
       coalesce(r.clicks, 0)::BIGINT AS clicks,
       coalesce(r.unattributed_clicks, 0)::BIGINT AS unattributed_clicks,
       coalesce(r.conversions, 0)::BIGINT AS conversions,
       coalesce(r.unattributed_conversions, 0)::BIGINT AS unattributed_conversions,
       coalesce(r.revenue_micros, 0)::BIGINT AS revenue_micros
FROM delivery d FULL JOIN response r ON {same_d_r}
