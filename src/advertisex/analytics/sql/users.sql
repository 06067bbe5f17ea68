-- Unique users by {keys} (hour first; columns of _imp with hour and ivt) of the impressions
-- that {scope} keeps, into the temp table _user_rows: the HyperLogLog state of their user ids
-- (DuckDB's approx_count_distinct: 2^10 one-byte registers, which merge exactly by their
-- registerwise maximum) and those registers; and, for a cell of at most {exact} impressions,
-- the sorted 64-bit hashes of its users, with which unions of small sets count exactly (else
-- NULL). Only the impressions of small cells are hashed one by one, in a second pass.
CREATE OR REPLACE TEMP VIEW _user_imps AS
SELECT date_trunc('hour', event_time) AS hour, ivt_reason IS NOT NULL AS ivt, *
FROM _imp
WHERE {scope};

CREATE OR REPLACE TEMP TABLE _user_states AS
SELECT {keys}, approx_count_distinct(user_id) EXPORT_STATE AS state,
       count(*) <= {exact} AS small
FROM _user_imps
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _user_hashes AS
SELECT {keys}, list_sort(list_distinct(list(hash(user_id)))) AS user_hashes
FROM _user_imps u
SEMI JOIN (SELECT * FROM _user_states WHERE small) s ON {same}
WHERE user_id IS NOT NULL
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _user_rows AS
SELECT {s_keys}, s.state,
       (s.state::STRUCT(precision UTINYINT, registers UTINYINT[])).registers AS registers,
       CASE WHEN s.small THEN coalesce(u.user_hashes, []::UBIGINT[]) END AS user_hashes
FROM _user_states s
LEFT JOIN _user_hashes u ON {same};
