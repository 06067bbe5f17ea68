-- Scalar helpers the stages share. Created in every processing connection.

-- A timestamp from epoch seconds or milliseconds, 'YYYY-MM-DD HH:MM:SS' or ISO-8601 with or
-- without an offset; naive text is read in the session's TimeZone. UTC TIMESTAMP, or NULL.
CREATE OR REPLACE TEMP MACRO advx_ts(s) AS (
  CASE
    WHEN s IS NULL THEN NULL
    WHEN regexp_full_match(s, '-?[0-9]{1,15}(\.[0-9]+)?') THEN
      CASE WHEN abs(s::DOUBLE) >= 1e11
           THEN make_timestamp((s::DOUBLE * 1000)::BIGINT)
           ELSE make_timestamp((s::DOUBLE * 1000000)::BIGINT) END
    ELSE coalesce(
      try_strptime(s, '%Y-%m-%d %H:%M:%S') AT TIME ZONE current_setting('TimeZone') AT TIME ZONE 'UTC',
      try_cast(s AS TIMESTAMPTZ) AT TIME ZONE 'UTC')
  END
);

-- A host name from a domain or URL: lower case, no scheme, port, path, 'www.' or final dot.
CREATE OR REPLACE TEMP MACRO advx_domain(s) AS nullif(
  regexp_replace(
    split_part(split_part(split_part(split_part(lower(trim(s)), '://', -1), '/', 1), '?', 1), ':', 1),
    '^www[0-9]*\.|\.$', '', 'g'),
  '');

-- A money amount as integer micros (1.5 -> 1500000).
CREATE OR REPLACE TEMP MACRO advx_micros(x) AS CAST(round(x * 1000000) AS BIGINT);
