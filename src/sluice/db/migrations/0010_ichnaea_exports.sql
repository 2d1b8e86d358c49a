-- The Ichnaea recipe's export configs: where the fan-out sends every accepted report.
--
-- The seed's table (ichnaea/models/config.py) with its names: `name`, `batch`, `schema` (the
-- exporter kind: dummy, geosubmit, bucket; `internal` comes with the station tables), `url`,
-- `skip_keys` and `skip_sources` (comma-separated sets, the empty string being the empty set).
-- Added: `max_age_seconds` (a batch is flushed when it holds `batch` reports or its oldest
-- report is this old; the seed had one global queue_max_age of 3600 s) and `max_attempts`
-- (tries of a batch before it goes to the export's dead letters; the seed tried 3 times,
-- then dropped the batch).

CREATE TABLE ichnaea.export_config (
    name varchar(40) PRIMARY KEY CHECK (name ~ '^[a-z0-9][-_a-z0-9]*$'),
    batch integer NOT NULL DEFAULT 100 CHECK (batch BETWEEN 1 AND 5000),
    schema varchar(32) NOT NULL,
    url varchar(512),
    skip_keys varchar(1024) NOT NULL DEFAULT '',
    skip_sources varchar(64) NOT NULL DEFAULT '',
    max_age_seconds double precision NOT NULL DEFAULT 3600 CHECK (max_age_seconds >= 0),
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now()
);
