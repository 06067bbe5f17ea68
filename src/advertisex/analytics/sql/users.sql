-- Unique users by {keys} (hour first; columns of _imp with hour and ivt) of the impressions
-- that {scope} keeps, into the temp table _user_states: the HyperLogLog state of their user ids
-- (DuckDB's approx_count_distinct: 2^10 one-byte registers, which merge exactly by their
-- registerwise maximum); and where the cell (the hash of its keys, NULL keys included) is one
-- of {small} and has at most {exact} impressions, the 64-bit hashes of its users, with which
-- unions of small sets count exactly. {small}: the cells expected small, so that only their
-- impressions are hashed one by one.
CREATE OR REPLACE TEMP TABLE _user_states AS
SELECT {keys}, approx_count_distinct(user_id) EXPORT_STATE AS state,
       CASE WHEN count(*) <= {exact} AND bool_and(in_small) THEN
         list_sort(list_distinct(coalesce(list(hash(user_id)) FILTER (user_id IS NOT NULL), [])))
       END AS user_hashes
FROM (
  SELECT u.*, s.cell IS NOT NULL AS in_small
  FROM (
    SELECT date_trunc('hour', event_time) AS hour, ivt_reason IS NOT NULL AS ivt, *
    FROM _imp
    WHERE {scope}
  ) u
  LEFT JOIN (SELECT DISTINCT cell FROM ({small})) s ON s.cell = hash({keys})
)
GROUP BY ALL
