-- The Ichnaea station tables, beside the API keys in schema `ichnaea` (migration 0007), and
-- what the internal exporter keeps with them: cell areas, the datamap grid, daily counters and
-- the batches already applied. See docs/stations.md.
--
-- Names and columns are the seed's (ichnaea/models/station.py, cell.py, content.py): wifi and
-- Bluetooth in 16 shards each by the fifth hex digit of the MAC, cells in one table per radio
-- (no cdma), the datamap in four quarters split at 36°N / 5°E. Differences, on purpose:
--   - counters are wide: block_count integer (the seed's tinyint stops at 255), samples bigint;
--   - times are timestamptz; source is the seed's ReportSource code;
--   - only the index a query of sluice uses is kept (region, for region counts; the cell tables'
--     (mcc, mnc, lac), for cell areas); the seed's created/modified/lat-lon indexes were unused
--     (seed issue #1622);
--   - a box whose min_lon is greater than its max_lon crosses the antimeridian;
--   - station tables leave 20 % of each page free (fillfactor 80): nearly every batch updates
--     rows in place, and with room on the page the update is HOT (no index changes, as neither
--     the key nor the region changes).

CREATE SCHEMA IF NOT EXISTS ichnaea;

DO $$
DECLARE
    kind text;
    digit int;
    radio text;
    quarter text;
    station_columns constant text := '
        lat double precision,
        lon double precision,
        max_lat double precision,
        min_lat double precision,
        max_lon double precision,
        min_lon double precision,
        radius integer CHECK (radius >= 0),
        region char(2),
        samples bigint CHECK (samples >= 0),
        source smallint CHECK (source IN (0, 3, 6, 9)),
        weight double precision,
        created timestamptz,
        modified timestamptz,
        last_seen date,
        block_first date,
        block_last date,
        block_count integer CHECK (block_count >= 0)';
BEGIN
    FOREACH kind IN ARRAY ARRAY['wifi', 'blue'] LOOP
        FOR digit IN 0..15 LOOP
            EXECUTE format(
                'CREATE TABLE ichnaea.%I (mac bytea PRIMARY KEY CHECK (length(mac) = 6), %s)'
                ' WITH (fillfactor = 80)',
                kind || '_shard_' || to_hex(digit), station_columns);
            EXECUTE format('CREATE INDEX ON ichnaea.%I (region)', kind || '_shard_' || to_hex(digit));
        END LOOP;
    END LOOP;
    FOREACH radio IN ARRAY ARRAY['gsm', 'wcdma', 'lte'] LOOP
        EXECUTE format(
            'CREATE TABLE ichnaea.%I (
                cellid bytea PRIMARY KEY CHECK (length(cellid) = 11),
                radio smallint NOT NULL,
                mcc integer NOT NULL,
                mnc integer NOT NULL,
                lac integer NOT NULL,
                cid bigint NOT NULL,
                psc smallint,
                %s) WITH (fillfactor = 80)',
            'cell_' || radio, station_columns);
        EXECUTE format('CREATE INDEX ON ichnaea.%I (mcc, mnc, lac)', 'cell_' || radio);
        EXECUTE format('CREATE INDEX ON ichnaea.%I (region)', 'cell_' || radio);
    END LOOP;
    FOREACH quarter IN ARRAY ARRAY['ne', 'nw', 'se', 'sw'] LOOP
        -- grid: struct !II of round(lat·1000) + 90000 and round(lon·1000) + 180000
        EXECUTE format(
            'CREATE TABLE ichnaea.%I (
                grid bytea PRIMARY KEY CHECK (length(grid) = 8),
                created date NOT NULL,
                modified date NOT NULL)',
            'datamap_' || quarter);
        EXECUTE format('CREATE INDEX ON ichnaea.%I (modified)', 'datamap_' || quarter);
    END LOOP;
END
$$;

-- One row per (radio, mcc, mnc, lac) with at least one positioned cell.
CREATE TABLE ichnaea.cell_area (
    areaid bytea PRIMARY KEY CHECK (length(areaid) = 7),
    radio smallint NOT NULL,
    mcc integer NOT NULL,
    mnc integer NOT NULL,
    lac integer NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    max_lat double precision NOT NULL,
    min_lat double precision NOT NULL,
    max_lon double precision NOT NULL,
    min_lon double precision NOT NULL,
    radius integer NOT NULL,
    region char(2),
    avg_cell_radius integer NOT NULL,
    num_cells integer NOT NULL,
    created timestamptz NOT NULL,
    modified timestamptz NOT NULL,
    last_seen date
);

-- Daily increments of the seed's StatKey counters (cell 1, unique_cell 2, wifi 3,
-- unique_wifi 4, blue 8, unique_blue 9), written in the transaction of the batch that counted
-- them, so that no Redis counter stands between a batch and its count.
CREATE TABLE ichnaea.stat_daily (
    key smallint NOT NULL CHECK (key IN (1, 2, 3, 4, 8, 9)),
    time date NOT NULL,
    value bigint NOT NULL CHECK (value >= 0),
    PRIMARY KEY (key, time)
);

-- The seed's `stat` table: per key and day the cumulative total up to that day.
CREATE VIEW ichnaea.stat AS
SELECT key, time, sum(value) OVER (PARTITION BY key ORDER BY time)::bigint AS value
FROM ichnaea.stat_daily;

-- Batches of reports whose observations are in the station tables: a batch delivered again
-- after a crash finds its id here and is not applied twice.
CREATE TABLE ichnaea.station_batches (
    batch_id text PRIMARY KEY,
    -- the order batches were applied in (commit order: the shards they touch are locked)
    seq bigserial NOT NULL UNIQUE,
    applied_at timestamptz NOT NULL DEFAULT now(),
    reports integer NOT NULL,
    observations integer NOT NULL
);
