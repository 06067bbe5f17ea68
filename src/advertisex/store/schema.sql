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
