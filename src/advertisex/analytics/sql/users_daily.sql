-- The unique users by {keys} (day first, the day of the hour) of the hourly rows users.sql left
-- in _user_rows: their states combined (the registerwise maximum), their users' hashes united
-- when every hour of the day had them (else NULL: the day counts by its registers).
SELECT {keys},
       (reduce(list(state), lambda a, b: combine(a, b))
         ::STRUCT(precision UTINYINT, registers UTINYINT[])).registers AS registers,
       CASE WHEN bool_and(user_hashes IS NOT NULL)
            THEN list_sort(list_distinct(flatten(list(user_hashes)))) END AS user_hashes
FROM (SELECT CAST(hour AS DATE) AS day, * FROM _user_rows)
GROUP BY ALL
