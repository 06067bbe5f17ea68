-- Unique users per group of {names} over the rows of {cells} (registers and user_hashes as
-- users.sql makes them; {select} projects the groups from its columns) that {where} keeps:
-- exact, the number of distinct user hashes, for a group whose every row has them; else the
-- HyperLogLog estimate of the group's registers merged registerwise (max): alpha m^2 /
-- sum(2^-register), or linear counting m ln(m / empty registers) below 2.5 m (Flajolet et al.
-- 2007; m = 1024 registers, standard error 1.04 / sqrt(m), about 3 %).
WITH c AS (
  SELECT {select}, registers, user_hashes FROM {cells} {where}
), g AS (
  SELECT *, bool_and(user_hashes IS NOT NULL) OVER (PARTITION BY {names}) AS exact FROM c
), regs AS (
  SELECT {names}, count(*) AS m, sum(pow(2.0, -r)) AS s, count(*) FILTER (r = 0) AS z
  FROM (
    SELECT {names}, i, max(r)::INT AS r
    FROM (
      SELECT {names}, unnest(registers) AS r, generate_subscripts(registers, 1) AS i
      FROM g
      WHERE NOT exact
    )
    GROUP BY ALL
  )
  GROUP BY ALL
)
SELECT {names}, count(DISTINCT h) AS unique_users
FROM (SELECT {names}, unnest(user_hashes) AS h FROM g WHERE exact)
GROUP BY ALL
UNION ALL
SELECT {names},
       CASE WHEN 0.7213 / (1 + 1.079 / m) * m * m / s <= 2.5 * m AND z > 0
            THEN round(m * ln(m / z))
            ELSE round(0.7213 / (1 + 1.079 / m) * m * m / s) END::BIGINT
FROM regs
