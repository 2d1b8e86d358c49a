-- Named queries of the station tables (schema ichnaea, migration 0013). Loaded by
-- sluice.stations.repository; `{table}` is a shard table composed as an identifier.

-- name: lock
-- Advisory locks held to the end of the transaction, taken in the order of the arrays (the
-- caller sorts them: every transaction takes its locks in one global order, so none can wait
-- for another that waits for it).
SELECT count(pg_advisory_xact_lock(c, i))
FROM unnest(%(classes)s::int[], %(ids)s::int[]) AS l(c, i)

-- name: record_batch
-- Nothing when the batch was applied already.
INSERT INTO ichnaea.station_batches (batch_id, reports, observations)
VALUES (%(batch_id)s, %(reports)s, %(observations)s)
ON CONFLICT (batch_id) DO NOTHING
RETURNING seq

-- name: area_cells
-- The positioned cells of the given areas (the table is the areas' radio), in key order: the
-- sums over them come out the same to the last bit however the rows lie in the table.
SELECT mcc, mnc, lac, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, last_seen
FROM ichnaea.{table}
WHERE (mcc, mnc, lac) IN (SELECT * FROM unnest(%(mcc)s::int[], %(mnc)s::int[], %(lac)s::int[]))
  AND lat IS NOT NULL AND lon IS NOT NULL
ORDER BY cellid

-- name: upsert_areas
INSERT INTO ichnaea.cell_area AS a (areaid, radio, mcc, mnc, lac, lat, lon, max_lat, min_lat,
                                    max_lon, min_lon, radius, region, avg_cell_radius,
                                    num_cells, created, modified, last_seen)
SELECT a_id, a_radio, a_mcc, a_mnc, a_lac, a_lat, a_lon, a_max_lat, a_min_lat, a_max_lon,
       a_min_lon, a_radius, a_region, a_avg, a_num, %(now)s, %(now)s, a_last_seen
FROM unnest(%(areaid)s::bytea[], %(radio)s::smallint[], %(mcc)s::int[], %(mnc)s::int[],
            %(lac)s::int[], %(lat)s::float8[], %(lon)s::float8[], %(max_lat)s::float8[],
            %(min_lat)s::float8[], %(max_lon)s::float8[], %(min_lon)s::float8[],
            %(radius)s::int[], %(region)s::char(2)[], %(avg_cell_radius)s::int[],
            %(num_cells)s::int[], %(last_seen)s::date[])
     AS u(a_id, a_radio, a_mcc, a_mnc, a_lac, a_lat, a_lon, a_max_lat, a_min_lat, a_max_lon,
          a_min_lon, a_radius, a_region, a_avg, a_num, a_last_seen)
ON CONFLICT (areaid) DO UPDATE
SET lat = EXCLUDED.lat, lon = EXCLUDED.lon, max_lat = EXCLUDED.max_lat,
    min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon, min_lon = EXCLUDED.min_lon,
    radius = EXCLUDED.radius, region = EXCLUDED.region,
    avg_cell_radius = EXCLUDED.avg_cell_radius, num_cells = EXCLUDED.num_cells,
    modified = EXCLUDED.modified, last_seen = EXCLUDED.last_seen

-- name: delete_areas
DELETE FROM ichnaea.cell_area WHERE areaid = ANY(%(areaid)s::bytea[])

-- name: touch_datamap
-- New grid cells are inserted; cells modified today already are left alone.
INSERT INTO ichnaea.{table} AS d (grid, created, modified)
SELECT g, %(today)s, %(today)s FROM unnest(%(grid)s::bytea[]) AS g
ON CONFLICT (grid) DO UPDATE SET modified = EXCLUDED.modified
WHERE d.modified < EXCLUDED.modified

-- name: cleanup_datamap
DELETE FROM ichnaea.{table} WHERE modified < %(before)s

-- name: add_stats
-- The keys come sorted: concurrent batches lock the rows of a day in one order.
INSERT INTO ichnaea.stat_daily AS s (key, time, value)
SELECT k, %(today)s, v FROM unnest(%(key)s::smallint[], %(value)s::bigint[]) AS u(k, v)
ON CONFLICT (key, time) DO UPDATE SET value = s.value + EXCLUDED.value

-- name: stats
SELECT key, time, value FROM ichnaea.stat ORDER BY time, key

-- name: show_mac
SELECT mac, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, samples, source,
       weight, created, modified, last_seen, block_first, block_last, block_count
FROM ichnaea.{table}
WHERE mac = %(key)s

-- name: show_cell
SELECT cellid, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, samples, source,
       weight, created, modified, last_seen, block_first, block_last, block_count, psc
FROM ichnaea.{table}
WHERE cellid = %(key)s

-- name: select_macs_part
-- One shard's part of `select_many`: the parts of every shard a batch touches are joined with
-- UNION ALL into one statement (one round trip); the tag tells the caller whose rows they are.
SELECT {tag}::smallint, mac, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region,
       samples, source, weight, created, modified, last_seen, block_first, block_last,
       block_count, NULL::smallint
FROM ichnaea.{table}
WHERE mac = ANY({keys}::bytea[])

-- name: select_cells_part
SELECT {tag}::smallint, cellid, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region,
       samples, source, weight, created, modified, last_seen, block_first, block_last,
       block_count, psc
FROM ichnaea.{table}
WHERE cellid = ANY({keys}::bytea[])

-- name: create_station_writes
-- The rows a batch writes, copied in (binary COPY) before one statement writes them into
-- their shard tables; `existing` says the row was read in this transaction. Session-local;
-- emptied by the statement that reads it, and truncated at commit: temporary tables are never
-- vacuumed, so rows only deleted would pile up dead and every scan of the table would read
-- them all again.
CREATE TEMPORARY TABLE IF NOT EXISTS station_writes (
    tag smallint NOT NULL, existing boolean NOT NULL, key bytea NOT NULL, radio smallint,
    mcc integer, mnc integer, lac integer, cid bigint, psc smallint, lat float8, lon float8,
    max_lat float8, min_lat float8, max_lon float8, min_lon float8, radius integer,
    region text, samples bigint, source smallint, weight float8, created timestamptz,
    modified timestamptz, last_seen date, block_first date, block_last date,
    block_count integer)
ON COMMIT DELETE ROWS

-- name: copy_station_writes
COPY pg_temp.station_writes (tag, existing, key, radio, mcc, mnc, lac, cid, psc, lat, lon,
                             max_lat, min_lat, max_lon, min_lon, radius, region, samples,
                             source, weight, created, modified, last_seen, block_first,
                             block_last, block_count)
FROM STDIN (FORMAT BINARY)

-- name: write_many
-- Every shard's writes as data-modifying CTEs of one statement: an UPDATE of the rows that
-- exist (read under the shard's lock in this transaction: a plain update, without the
-- speculative insertion and row lock of ON CONFLICT) and an INSERT of the new ones (ON
-- CONFLICT kept as a safety net); the copied rows are emptied (every part reads the
-- statement's snapshot, taken before the delete). The count of updated rows comes back, for
-- the caller to check.
WITH {parts}, emptied AS (DELETE FROM pg_temp.station_writes)
SELECT count(*) FROM ({updated}) AS u

-- name: updated_part
SELECT 1 FROM {name}

-- name: update_macs_part
{name} AS (
    UPDATE ichnaea.{table} AS t
    SET lat = w.lat, lon = w.lon, max_lat = w.max_lat, min_lat = w.min_lat,
        max_lon = w.max_lon, min_lon = w.min_lon, radius = w.radius, region = w.region,
        samples = w.samples, source = w.source, weight = w.weight, created = w.created,
        modified = w.modified, last_seen = w.last_seen, block_first = w.block_first,
        block_last = w.block_last, block_count = w.block_count
    FROM pg_temp.station_writes AS w
    WHERE w.tag = {tag} AND w.existing AND t.mac = w.key
      -- the keys again as an array: an index condition, so the shard is probed by key and
      -- never scanned whole (a hash join would read every row of it, live and dead)
      AND t.mac = ANY(ARRAY(SELECT key FROM pg_temp.station_writes
                              WHERE tag = {tag} AND existing))
    RETURNING 1)

-- name: update_cells_part
{name} AS (
    UPDATE ichnaea.{table} AS t
    SET psc = w.psc, lat = w.lat, lon = w.lon, max_lat = w.max_lat, min_lat = w.min_lat,
        max_lon = w.max_lon, min_lon = w.min_lon, radius = w.radius, region = w.region,
        samples = w.samples, source = w.source, weight = w.weight, created = w.created,
        modified = w.modified, last_seen = w.last_seen, block_first = w.block_first,
        block_last = w.block_last, block_count = w.block_count
    FROM pg_temp.station_writes AS w
    WHERE w.tag = {tag} AND w.existing AND t.cellid = w.key
      -- the keys again as an array: an index condition, so the shard is probed by key and
      -- never scanned whole (a hash join would read every row of it, live and dead)
      AND t.cellid = ANY(ARRAY(SELECT key FROM pg_temp.station_writes
                              WHERE tag = {tag} AND existing))
    RETURNING 1)

-- name: insert_macs_part
{name} AS (
    INSERT INTO ichnaea.{table} AS t (mac, lat, lon, max_lat, min_lat, max_lon, min_lon,
                                      radius, region, samples, source, weight, created,
                                      modified, last_seen, block_first, block_last,
                                      block_count)
    SELECT key, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, samples, source,
           weight, created, modified, last_seen, block_first, block_last, block_count
    FROM pg_temp.station_writes
    WHERE tag = {tag} AND NOT existing
    ORDER BY key
    ON CONFLICT (mac) DO UPDATE
    SET lat = EXCLUDED.lat, lon = EXCLUDED.lon, max_lat = EXCLUDED.max_lat,
        min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon, min_lon = EXCLUDED.min_lon,
        radius = EXCLUDED.radius, region = EXCLUDED.region, samples = EXCLUDED.samples,
        source = EXCLUDED.source, weight = EXCLUDED.weight, created = EXCLUDED.created,
        modified = EXCLUDED.modified, last_seen = EXCLUDED.last_seen,
        block_first = EXCLUDED.block_first, block_last = EXCLUDED.block_last,
        block_count = EXCLUDED.block_count)

-- name: insert_cells_part
{name} AS (
    INSERT INTO ichnaea.{table} AS t (cellid, radio, mcc, mnc, lac, cid, psc, lat, lon,
                                      max_lat, min_lat, max_lon, min_lon, radius, region,
                                      samples, source, weight, created, modified, last_seen,
                                      block_first, block_last, block_count)
    SELECT key, radio, mcc, mnc, lac, cid, psc, lat, lon, max_lat, min_lat, max_lon, min_lon,
           radius, region, samples, source, weight, created, modified, last_seen, block_first,
           block_last, block_count
    FROM pg_temp.station_writes
    WHERE tag = {tag} AND NOT existing
    ORDER BY key
    ON CONFLICT (cellid) DO UPDATE
    SET psc = EXCLUDED.psc, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
        max_lat = EXCLUDED.max_lat, min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon,
        min_lon = EXCLUDED.min_lon, radius = EXCLUDED.radius, region = EXCLUDED.region,
        samples = EXCLUDED.samples, source = EXCLUDED.source, weight = EXCLUDED.weight,
        created = EXCLUDED.created, modified = EXCLUDED.modified,
        last_seen = EXCLUDED.last_seen, block_first = EXCLUDED.block_first,
        block_last = EXCLUDED.block_last, block_count = EXCLUDED.block_count)
