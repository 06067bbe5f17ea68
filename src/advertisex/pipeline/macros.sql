-- Scalar helpers the stages share. Created (as TEMP macros) in every connection.

-- A timestamp from 'YYYY-MM-DD HH:MM:SS', ISO-8601 with or without an offset, or epoch seconds
-- or milliseconds; naive text is read in the session's TimeZone. A UTC TIMESTAMP, or NULL.
-- The cast to TIMESTAMPTZ reads every text form (and is ~5x cheaper than try_strptime); it
-- reads no bare number, so the epoch pattern is tried only where the cast gave nothing.
CREATE OR REPLACE TEMP MACRO advx_ts(s) AS coalesce(
  try_cast(s AS TIMESTAMPTZ) AT TIME ZONE 'UTC',
  CASE WHEN regexp_full_match(s, '-?[0-9]{1,15}(\.[0-9]+)?') THEN
    CASE WHEN abs(s::DOUBLE) >= 1e11
         THEN make_timestamp((s::DOUBLE * 1000)::BIGINT)
         ELSE make_timestamp((s::DOUBLE * 1000000)::BIGINT) END
  END
);

-- trim(s), called only where it can change something: trim is costly (it allocates a new
-- string), and of ASCII characters it removes only the space; other strings it may change
-- (non-ASCII: strlen counts bytes, length characters) go through it as before.
CREATE OR REPLACE TEMP MACRO advx_trim(s) AS
  CASE WHEN starts_with(s, ' ') OR ends_with(s, ' ') OR strlen(s) <> length(s) THEN trim(s)
       ELSE s END;

-- A host name from a domain or URL: lower case, no scheme, port, path, 'www.' or final dot.
-- Plain host names (the common case) skip the URL handling.
CREATE OR REPLACE TEMP MACRO advx_host(h) AS
  CASE WHEN starts_with(h, 'www.') THEN h[5:] ELSE h END;
CREATE OR REPLACE TEMP MACRO advx_domain(s) AS nullif(rtrim(
  CASE
    WHEN regexp_matches(s, '[/:?A-Z ]') THEN regexp_replace(
      split_part(split_part(split_part(split_part(lower(trim(s)), '://', -1), '/', 1), '?', 1),
                 ':', 1),
      '^www[0-9]*\.', '')
    ELSE advx_host(s)
  END, '.'), '');

-- A money amount as integer micros (1.5 -> 1500000); NULL for what no amount can be (NaN,
-- infinities, beyond BIGINT): validate rejects those rows, this only keeps them from failing.
CREATE OR REPLACE TEMP MACRO advx_micros(x) AS
  CASE WHEN isfinite(x) AND abs(x) < 9e12 THEN CAST(round(x * 1000000) AS BIGINT) END;

-- An IPv4 address in dotted form as its 32-bit number; NULL for anything else (IPv6, junk).
-- Split and cast as a list (`o`: its octets): 3x cheaper than a regular expression and four
-- split_part calls. A scalar subquery instead of the second macro cost as much as the regex.
CREATE OR REPLACE TEMP MACRO advx_ipv4_octets(o, s) AS
  CASE WHEN len(o) = 4 AND length(s) <= 15 AND NOT contains(s, ' ') AND NOT contains(s, '+')
       THEN o[1]::BIGINT * 16777216 + o[2]::BIGINT * 65536 + o[3]::BIGINT * 256 + o[4] END;
CREATE OR REPLACE TEMP MACRO advx_ipv4(s) AS
  advx_ipv4_octets(try_cast(string_split(s, '.') AS UTINYINT[]), s);
