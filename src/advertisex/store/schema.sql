-- advertisex store: bookkeeping tables (the event tables are made from schemas/sources.py).

CREATE TABLE IF NOT EXISTS schema_version (
  version    INTEGER NOT NULL,
  applied_at TIMESTAMP NOT NULL
);

-- Every row that was not accepted, with where it came from and why.
CREATE SEQUENCE IF NOT EXISTS reject_ids START 1;
CREATE TABLE IF NOT EXISTS rejects (
  reject_id     BIGINT PRIMARY KEY DEFAULT nextval('reject_ids'),
  source        VARCHAR NOT NULL,   -- impressions | clicks_conversions | bid_requests
  source_uri    VARCHAR NOT NULL,   -- file path, HTTP request id, kafka topic/partition
  source_record BIGINT,             -- line number (text) or record index (Avro)
  source_offset BIGINT,             -- byte offset of the record (of its block for Avro)
  reason        VARCHAR NOT NULL,   -- one of schemas/reasons.py
  field         VARCHAR,
  detail        VARCHAR,
  raw           VARCHAR,            -- the record as it arrived (Avro: as JSON)
  context       VARCHAR,            -- what replay needs besides raw (the CSV header)
  batch_id      BIGINT,
  rejected_at   TIMESTAMP NOT NULL
);

-- How far each input has been committed; written in the same transaction as its rows.
CREATE TABLE IF NOT EXISTS source_positions (
  source_uri   VARCHAR PRIMARY KEY,
  source       VARCHAR NOT NULL,
  size         BIGINT,
  mtime_ns     BIGINT,
  "offset"     BIGINT NOT NULL,
  record       BIGINT NOT NULL,
  complete     BOOLEAN NOT NULL,
  updated_at   TIMESTAMP NOT NULL
);

-- One row per committed batch: the reconciliation, kept.
CREATE SEQUENCE IF NOT EXISTS batch_ids START 1;
CREATE TABLE IF NOT EXISTS batches (
  batch_id     BIGINT PRIMARY KEY,
  source       VARCHAR NOT NULL,
  source_uri   VARCHAR NOT NULL,
  first_record BIGINT,
  end_record   BIGINT,
  received     BIGINT NOT NULL,
  accepted     BIGINT NOT NULL,
  rejected     BIGINT NOT NULL,
  duplicates   BIGINT NOT NULL,
  committed_at TIMESTAMP NOT NULL
);

-- Creatives -> campaigns -> advertisers.
CREATE TABLE IF NOT EXISTS creatives (
  creative_id     VARCHAR PRIMARY KEY,
  campaign_id     VARCHAR NOT NULL,
  advertiser_id   VARCHAR,
  creative_name   VARCHAR,
  campaign_name   VARCHAR,
  advertiser_name VARCHAR,
  loaded_at       TIMESTAMP NOT NULL
);

-- Real time (serve, consume). Which HTTP request each collected record came from: records
-- first_record..end_record of batch batch_id (written in the batch's transaction).
CREATE TABLE IF NOT EXISTS http_requests (
  request_id   VARCHAR NOT NULL,
  source       VARCHAR NOT NULL,
  source_uri   VARCHAR NOT NULL,
  batch_id     BIGINT NOT NULL,
  first_record BIGINT NOT NULL,
  end_record   BIGINT NOT NULL,
  remote       VARCHAR,
  received_at  TIMESTAMP NOT NULL
);

-- The next Kafka offset to read per consumer group and partition, committed with the rows.
CREATE TABLE IF NOT EXISTS kafka_offsets (
  consumer_group VARCHAR NOT NULL,
  topic          VARCHAR NOT NULL,
  "partition"    INTEGER NOT NULL,
  next_offset    BIGINT NOT NULL,
  updated_at     TIMESTAMP NOT NULL,
  PRIMARY KEY (consumer_group, topic, "partition")
);

-- Quality alerts (issue 6): one row per episode of a failing check, pending -> firing -> resolved.
CREATE TABLE IF NOT EXISTS alerts (
  fingerprint  VARCHAR NOT NULL,    -- md5 of the alert name and labels: one open episode each
  alertname    VARCHAR NOT NULL,    -- the check's name
  severity     VARCHAR NOT NULL,    -- critical | warning
  labels       JSON NOT NULL,       -- check, source, subject, severity
  summary      VARCHAR NOT NULL,
  runbook      VARCHAR,
  value        DOUBLE,
  threshold    DOUBLE,
  state        VARCHAR NOT NULL,    -- pending | firing | resolved
  active_since TIMESTAMP NOT NULL,  -- first evaluation that found the check failing
  fired_at     TIMESTAMP,
  resolved_at  TIMESTAMP,
  updated_at   TIMESTAMP NOT NULL
);

-- Every version of every creative, by load time (`creatives` holds the latest). Enrichment
-- stamps events with the version in force when they were ingested.
CREATE TABLE IF NOT EXISTS creative_versions (
  creative_id     VARCHAR NOT NULL,
  campaign_id     VARCHAR NOT NULL,
  advertiser_id   VARCHAR,
  creative_name   VARCHAR,
  campaign_name   VARCHAR,
  advertiser_name VARCHAR,
  loaded_at       TIMESTAMP NOT NULL
);

-- Attribution and rollups (analytics/), kept by `advertisex.analytics.refresh`.
-- Each click with the impression that earned it (NULL: unattributed).
CREATE TABLE IF NOT EXISTS click_attribution (
  click_id        VARCHAR NOT NULL,
  click_time      TIMESTAMP NOT NULL,
  impression_id   VARCHAR,
  impression_time TIMESTAMP,
  method          VARCHAR,            -- impression_id | lookback
  lag_seconds     DOUBLE
);

-- Each conversion with its touches under the model (touch NULL: unattributed).
CREATE TABLE IF NOT EXISTS conversion_attribution (
  conversion_id   VARCHAR NOT NULL,
  conversion_time TIMESTAMP NOT NULL,
  conversion_type VARCHAR NOT NULL,
  model           VARCHAR NOT NULL,   -- last_touch | first_touch | linear
  touch           VARCHAR,            -- click (click-through) | view (view-through)
  touch_id        VARCHAR,            -- the click's or the impression's event_id
  touch_time      TIMESTAMP,
  weight          DOUBLE NOT NULL,    -- credit of this touch; a conversion's weights sum to 1
  lag_seconds     DOUBLE,
  primary_touch   BOOLEAN NOT NULL    -- the touch whose dimensions the rollups use
);

-- Each impression with the bid request that won it.
CREATE TABLE IF NOT EXISTS impression_bids (
  impression_id     VARCHAR NOT NULL,
  impression_time   TIMESTAMP NOT NULL,
  auction_id        VARCHAR NOT NULL,
  bid_time          TIMESTAMP,
  method            VARCHAR NOT NULL, -- bid_request_id | window
  bid_amount_micros BIGINT,
  win_price_micros  BIGINT
);

-- Rollups: narrow aggregates, one per question a report asks (see analytics/rollups.py ROLLUPS);
-- ivt splits invalid traffic. Unique users, which do not add up across rows, have their own
-- tables (rollup_hourly_users, rollup_daily_users) of mergeable sketches.
-- Hourly by campaign x country x device.
CREATE TABLE IF NOT EXISTS rollup_hourly (
  hour                     TIMESTAMP NOT NULL,
  campaign_id              VARCHAR,
  advertiser_id            VARCHAR,
  country                  VARCHAR,
  device_type              VARCHAR,
  ivt                      BOOLEAN NOT NULL,
  bid_requests             BIGINT NOT NULL,
  bids                     BIGINT NOT NULL,
  wins                     BIGINT NOT NULL,
  impressions              BIGINT NOT NULL,
  spend_cpm_micros         BIGINT NOT NULL,  -- sum of CPM prices in micros: spend = this / 1e9
  clicks                   BIGINT NOT NULL,
  unattributed_clicks      BIGINT NOT NULL,
  conversions              BIGINT NOT NULL,
  unattributed_conversions BIGINT NOT NULL,
  revenue_micros           BIGINT NOT NULL
);

-- Hourly by campaign x creative.
CREATE TABLE IF NOT EXISTS rollup_hourly_creative (
  hour                     TIMESTAMP NOT NULL,
  campaign_id              VARCHAR,
  advertiser_id            VARCHAR,
  creative_id              VARCHAR,
  ivt                      BOOLEAN NOT NULL,
  bid_requests             BIGINT NOT NULL,
  bids                     BIGINT NOT NULL,
  wins                     BIGINT NOT NULL,
  impressions              BIGINT NOT NULL,
  spend_cpm_micros         BIGINT NOT NULL,
  clicks                   BIGINT NOT NULL,
  unattributed_clicks      BIGINT NOT NULL,
  conversions              BIGINT NOT NULL,
  unattributed_conversions BIGINT NOT NULL,
  revenue_micros           BIGINT NOT NULL
);

-- Daily by campaign x site.
CREATE TABLE IF NOT EXISTS rollup_daily_site (
  day                      DATE NOT NULL,
  campaign_id              VARCHAR,
  advertiser_id            VARCHAR,
  site                     VARCHAR,
  ivt                      BOOLEAN NOT NULL,
  bid_requests             BIGINT NOT NULL,
  bids                     BIGINT NOT NULL,
  wins                     BIGINT NOT NULL,
  impressions              BIGINT NOT NULL,
  spend_cpm_micros         BIGINT NOT NULL,
  clicks                   BIGINT NOT NULL,
  unattributed_clicks      BIGINT NOT NULL,
  conversions              BIGINT NOT NULL,
  unattributed_conversions BIGINT NOT NULL,
  revenue_micros           BIGINT NOT NULL
);

-- Conversions and revenue by type, hourly by campaign x creative x site x country x device.
CREATE TABLE IF NOT EXISTS rollup_hourly_conversions (
  hour            TIMESTAMP NOT NULL,
  campaign_id     VARCHAR,
  advertiser_id   VARCHAR,
  creative_id     VARCHAR,
  site            VARCHAR,
  country         VARCHAR,
  device_type     VARCHAR,
  ivt             BOOLEAN NOT NULL,
  conversion_type VARCHAR NOT NULL,
  conversions     BIGINT NOT NULL,
  revenue_micros  BIGINT NOT NULL
);

-- Unique users (reach) by hour x campaign, and by day x campaign: the HyperLogLog registers of
-- the impressions' user ids (2^10 one-byte registers: the state of DuckDB's
-- approx_count_distinct, standard error about 3 %), which merge exactly across rows by their
-- registerwise maximum; and where the hour had at most rollup_exact_users impressions (the day:
-- where every hour had), its users' 64-bit hashes, so that small sets count exactly
-- (analytics/sql/reach.sql). ivt as in the rollups above.
CREATE TABLE IF NOT EXISTS rollup_hourly_users (
  hour          TIMESTAMP NOT NULL,
  campaign_id   VARCHAR,
  advertiser_id VARCHAR,
  ivt           BOOLEAN NOT NULL,
  registers     UTINYINT[] NOT NULL,
  user_hashes   UBIGINT[]  -- NULL: too many impressions that hour to keep them
);
CREATE TABLE IF NOT EXISTS rollup_daily_users (
  day           DATE NOT NULL,
  campaign_id   VARCHAR,
  advertiser_id VARCHAR,
  ivt           BOOLEAN NOT NULL,
  registers     UTINYINT[] NOT NULL,
  user_hashes   UBIGINT[]
);

-- What the rollups have seen: batches folded in, and the creatives as they were then.
CREATE TABLE IF NOT EXISTS rollup_batches (
  batch_id BIGINT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS rollup_creatives (
  creative_id   VARCHAR PRIMARY KEY,
  campaign_id   VARCHAR,
  advertiser_id VARCHAR
);
CREATE TABLE IF NOT EXISTS rollup_runs (
  run_at       TIMESTAMP NOT NULL,
  full_rebuild BOOLEAN NOT NULL,
  hours        BIGINT NOT NULL,
  seconds      DOUBLE NOT NULL
);

-- Daily by campaign x country x device, from rollup_hourly: what long-range campaign reports read.
CREATE TABLE IF NOT EXISTS rollup_daily (
  day                      DATE NOT NULL,
  campaign_id              VARCHAR,
  advertiser_id            VARCHAR,
  country                  VARCHAR,
  device_type              VARCHAR,
  ivt                      BOOLEAN NOT NULL,
  bid_requests             BIGINT NOT NULL,
  bids                     BIGINT NOT NULL,
  wins                     BIGINT NOT NULL,
  impressions              BIGINT NOT NULL,
  spend_cpm_micros         BIGINT NOT NULL,
  clicks                   BIGINT NOT NULL,
  unattributed_clicks      BIGINT NOT NULL,
  conversions              BIGINT NOT NULL,
  unattributed_conversions BIGINT NOT NULL,
  revenue_micros           BIGINT NOT NULL
);

-- Enrichment (issue 3): every user agent classified so far, under the rules (`rules`: the
-- uap-core snapshot and our classifier's version) that classified it, so that an agent is
-- parsed once per store rather than once per process. Rows of other rules are dropped.
CREATE TABLE IF NOT EXISTS user_agents (
  user_agent  VARCHAR PRIMARY KEY,
  device_type VARCHAR NOT NULL,
  os          VARCHAR,
  browser     VARCHAR,
  is_bot      BOOLEAN NOT NULL,
  rules       VARCHAR NOT NULL
);

-- Schema drift (issue 6): the fields a sample of each batch's accepted records carried, per
-- event-time minute (pipeline/profile.py); field '' counts the records sampled. Paths are
-- dotted, [0] for any array element; json_type is number, varchar, boolean, null, object or
-- array (Avro types under the same names; timestamp), text for CSV.
CREATE TABLE IF NOT EXISTS field_stats (
  batch_id    BIGINT NOT NULL,
  source      VARCHAR NOT NULL,
  minute      TIMESTAMP NOT NULL,
  field       VARCHAR NOT NULL,
  json_type   VARCHAR NOT NULL,
  n           BIGINT NOT NULL,
  ingested_at TIMESTAMP NOT NULL
);
