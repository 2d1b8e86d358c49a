-- Named queries of the station tables (schema ichnaea, migration 0013). Loaded by
-- sluice.stations.repository; `{table}` is a shard table composed as an identifier.

-- name: lock
-- Advisory locks held to the end of the transaction, taken in the order of the arrays (the
-- caller sorts them: every transaction takes its locks in one global order, so none can wait
-- for another that waits for it). Nested loops are off for the rest of the transaction: the
-- temporary tables of a batch have no statistics, and the planner's guess of a handful of
-- rows made each shard's join of them a nested loop comparing every row with every row.
SELECT count(pg_advisory_xact_lock(c, i)), set_config('enable_nestloop', 'off', true)
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

-- name: station_versions
-- The tables' versions (migration 0015) and this transaction's id, which becomes the version
-- of every table it writes. The version rows stay locked to the end of the transaction: a
-- writer that takes no shard lock (an operator's SQL) waits for the batch instead of writing
-- between this read and the batch's own write, unseen by the updater's cache.
SELECT name, version, pg_current_xact_id()::text::bigint
FROM ichnaea.station_versions
WHERE name = ANY(%(names)s::text[])
ORDER BY name
FOR UPDATE

-- name: create_temporaries
-- The session's temporary table of the keys a batch reads (with each one's index in the batch
-- and its shard's tag), made once per session. Emptied at commit: temporary tables are never
-- vacuumed, so rows only deleted would pile up dead.
DO $$
BEGIN
    IF to_regclass('pg_temp.station_keys') IS NULL THEN
        CREATE TEMPORARY TABLE station_keys (
            i integer NOT NULL, tag smallint NOT NULL, key bytea NOT NULL)
        ON COMMIT DELETE ROWS;
        -- Each shard's part reads its own rows by index, not every row of the batch.
        CREATE INDEX ON station_keys (tag);
    END IF;
END
$$

-- name: copy_station_keys
COPY pg_temp.station_keys (i, tag, key) FROM STDIN (FORMAT BINARY)

-- name: read_stations
-- The stations of every shard part, each column as one array in PostgreSQL's binary form
-- (array_send), which sluice.stations.binary reads with numpy: NULLs become sentinels (NaN,
-- -1, -infinity, two spaces), so every element has the same width. One row; NULLs when no
-- station was found.
SELECT count(*), array_send(array_agg(i)), array_send(array_agg(lat)),
       array_send(array_agg(lon)), array_send(array_agg(max_lat)),
       array_send(array_agg(min_lat)), array_send(array_agg(max_lon)),
       array_send(array_agg(min_lon)), array_send(array_agg(weight)),
       array_send(array_agg(radius)), array_send(array_agg(samples)),
       array_send(array_agg(source)), array_send(array_agg(block_count)),
       array_send(array_agg(psc)), array_send(array_agg(created)),
       array_send(array_agg(modified)), array_send(array_agg(last_seen)),
       array_send(array_agg(block_first)), array_send(array_agg(block_last)),
       array_send(array_agg(region))
FROM ({parts}) AS s (i, lat, lon, max_lat, min_lat, max_lon, min_lon, weight, radius, samples,
                     source, block_count, psc, created, modified, last_seen, block_first,
                     block_last, region)

-- name: read_macs_part
-- One shard's part of `read_stations`; the keys again as an array make an index condition, so
-- the shard is probed by key and never scanned whole.
SELECT k.i, coalesce(t.lat, 'NaN'), coalesce(t.lon, 'NaN'), coalesce(t.max_lat, 'NaN'),
       coalesce(t.min_lat, 'NaN'), coalesce(t.max_lon, 'NaN'), coalesce(t.min_lon, 'NaN'),
       coalesce(t.weight, 'NaN'), coalesce(t.radius, -1), coalesce(t.samples, -1),
       coalesce(t.source, -1::smallint), coalesce(t.block_count, -1), -1::smallint,
       coalesce(t.created, '-infinity'), coalesce(t.modified, '-infinity'),
       coalesce(t.last_seen, '-infinity'), coalesce(t.block_first, '-infinity'),
       coalesce(t.block_last, '-infinity'), coalesce(t.region, '')::char(2)
FROM ichnaea.{table} AS t
JOIN pg_temp.station_keys AS k ON k.key = t.mac AND k.tag = {tag}
WHERE t.mac = ANY(ARRAY(SELECT key FROM pg_temp.station_keys WHERE tag = {tag}))

-- name: read_cells_part
SELECT k.i, coalesce(t.lat, 'NaN'), coalesce(t.lon, 'NaN'), coalesce(t.max_lat, 'NaN'),
       coalesce(t.min_lat, 'NaN'), coalesce(t.max_lon, 'NaN'), coalesce(t.min_lon, 'NaN'),
       coalesce(t.weight, 'NaN'), coalesce(t.radius, -1), coalesce(t.samples, -1),
       coalesce(t.source, -1::smallint), coalesce(t.block_count, -1),
       coalesce(t.psc, -1::smallint), coalesce(t.created, '-infinity'),
       coalesce(t.modified, '-infinity'), coalesce(t.last_seen, '-infinity'),
       coalesce(t.block_first, '-infinity'), coalesce(t.block_last, '-infinity'),
       coalesce(t.region, '')::char(2)
FROM ichnaea.{table} AS t
JOIN pg_temp.station_keys AS k ON k.key = t.cellid AND k.tag = {tag}
WHERE t.cellid = ANY(ARRAY(SELECT key FROM pg_temp.station_keys WHERE tag = {tag}))

-- name: write_many
-- Every shard's writes as data-modifying CTEs of one statement: an UPDATE of the rows that
-- exist (read under the shard's lock in this transaction: a plain update, without the
-- speculative insertion and row lock of ON CONFLICT) and an INSERT of the new ones (ON
-- CONFLICT kept as a safety net). The count of updated rows comes back, for the caller to
-- check.
WITH {parts}
SELECT count(*) FROM ({updated}) AS u

-- name: updated_part
SELECT 1 FROM {name}

-- name: station_rows
-- The rows of one part, sent as one binary array per column (sluice.stations.binary), with
-- NULLs back from their sentinels.
SELECT key, NULLIF(lat, 'NaN') AS lat, NULLIF(lon, 'NaN') AS lon,
       NULLIF(max_lat, 'NaN') AS max_lat, NULLIF(min_lat, 'NaN') AS min_lat,
       NULLIF(max_lon, 'NaN') AS max_lon, NULLIF(min_lon, 'NaN') AS min_lon,
       NULLIF(weight, 'NaN') AS weight, NULLIF(radius, -1) AS radius,
       NULLIF(samples, -1) AS samples, NULLIF(source, -1) AS source,
       NULLIF(block_count, -1) AS block_count, NULLIF(psc, -1) AS psc,
       NULLIF(created, '-infinity') AS created, NULLIF(modified, '-infinity') AS modified,
       NULLIF(last_seen, '-infinity') AS last_seen,
       NULLIF(block_first, '-infinity') AS block_first,
       NULLIF(block_last, '-infinity') AS block_last, NULLIF(region, '') AS region
FROM unnest({key}::bytea[], {lat}::float8[], {lon}::float8[], {max_lat}::float8[],
            {min_lat}::float8[], {max_lon}::float8[], {min_lon}::float8[], {weight}::float8[],
            {radius}::int[], {samples}::bigint[], {source}::smallint[], {block_count}::int[],
            {psc}::smallint[], {created}::timestamptz[], {modified}::timestamptz[],
            {last_seen}::date[], {block_first}::date[], {block_last}::date[],
            {region}::bpchar[])
     AS u (key, lat, lon, max_lat, min_lat, max_lon, min_lon, weight, radius, samples, source,
           block_count, psc, created, modified, last_seen, block_first, block_last, region)

-- name: update_macs_part
{name} AS (
    UPDATE ichnaea.{table} AS t
    SET lat = w.lat, lon = w.lon, max_lat = w.max_lat, min_lat = w.min_lat,
        max_lon = w.max_lon, min_lon = w.min_lon, radius = w.radius, region = w.region,
        samples = w.samples, source = w.source, weight = w.weight, created = w.created,
        modified = w.modified, last_seen = w.last_seen, block_first = w.block_first,
        block_last = w.block_last, block_count = w.block_count
    FROM ({rows}) AS w
    WHERE t.mac = w.key
      -- the keys again as an array: an index condition, so the shard is probed by key and
      -- never scanned whole (a hash join would read every row of it, live and dead)
      AND t.mac = ANY({keys}::bytea[])
    RETURNING 1)

-- name: update_cells_part
{name} AS (
    UPDATE ichnaea.{table} AS t
    SET psc = w.psc, lat = w.lat, lon = w.lon, max_lat = w.max_lat, min_lat = w.min_lat,
        max_lon = w.max_lon, min_lon = w.min_lon, radius = w.radius, region = w.region,
        samples = w.samples, source = w.source, weight = w.weight, created = w.created,
        modified = w.modified, last_seen = w.last_seen, block_first = w.block_first,
        block_last = w.block_last, block_count = w.block_count
    FROM ({rows}) AS w
    WHERE t.cellid = w.key
      -- the keys again as an array: an index condition (see update_macs_part)
      AND t.cellid = ANY({keys}::bytea[])
    RETURNING 1)

-- name: insert_macs_part
{name} AS (
    INSERT INTO ichnaea.{table} AS t (mac, lat, lon, max_lat, min_lat, max_lon, min_lon,
                                      radius, region, samples, source, weight, created,
                                      modified, last_seen, block_first, block_last,
                                      block_count)
    SELECT key, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, samples, source,
           weight, created, modified, last_seen, block_first, block_last, block_count
    FROM ({rows}) AS w
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
-- A cell key's parts (``!bHHHI``) are its columns radio, mcc, mnc, lac and cid.
{name} AS (
    INSERT INTO ichnaea.{table} AS t (cellid, radio, mcc, mnc, lac, cid, psc, lat, lon,
                                      max_lat, min_lat, max_lon, min_lon, radius, region,
                                      samples, source, weight, created, modified, last_seen,
                                      block_first, block_last, block_count)
    SELECT key, get_byte(key, 0), get_byte(key, 1) * 256 + get_byte(key, 2),
           get_byte(key, 3) * 256 + get_byte(key, 4), get_byte(key, 5) * 256 + get_byte(key, 6),
           ((get_byte(key, 7) * 256 + get_byte(key, 8)) * 256 + get_byte(key, 9))::bigint * 256
           + get_byte(key, 10),
           psc, lat, lon, max_lat, min_lat, max_lon, min_lon, radius, region, samples, source,
           weight, created, modified, last_seen, block_first, block_last, block_count
    FROM ({rows}) AS w
    ORDER BY key
    ON CONFLICT (cellid) DO UPDATE
    SET psc = EXCLUDED.psc, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
        max_lat = EXCLUDED.max_lat, min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon,
        min_lon = EXCLUDED.min_lon, radius = EXCLUDED.radius, region = EXCLUDED.region,
        samples = EXCLUDED.samples, source = EXCLUDED.source, weight = EXCLUDED.weight,
        created = EXCLUDED.created, modified = EXCLUDED.modified,
        last_seen = EXCLUDED.last_seen, block_first = EXCLUDED.block_first,
        block_last = EXCLUDED.block_last, block_count = EXCLUDED.block_count)

-- name: expire_macs_window
-- Upkeep (sluice.stations.upkeep): stale stations, old counters and datamap cells removed in
-- bounded steps, each in a short transaction under the table's shard lock.
--
-- The next `chunk` keys after `after` (a primary-key range: the shard is walked once, whatever
-- share of it is stale): the window's last key, NULL when the window was not full (the shard
-- is done), and the keys of the stations in it last active before `before`. Last active:
-- last_seen, or for a blocked station (no last_seen) its last block; created for a row with
-- neither. Read-only, so a window without stale stations writes nothing (and leaves the
-- table's version, migration 0015, alone).
WITH win AS (
    SELECT mac, greatest(last_seen, block_last, created::date) < %(before)s AS stale
    FROM ichnaea.{table} WHERE mac > %(after)s ORDER BY mac LIMIT %(chunk)s
)
SELECT (SELECT mac FROM win ORDER BY mac OFFSET %(chunk)s - 1 LIMIT 1),
       ARRAY(SELECT mac FROM win WHERE stale)

-- name: expire_cells_window
WITH win AS (
    SELECT cellid, greatest(last_seen, block_last, created::date) < %(before)s AS stale
    FROM ichnaea.{table} WHERE cellid > %(after)s ORDER BY cellid LIMIT %(chunk)s
)
SELECT (SELECT cellid FROM win ORDER BY cellid OFFSET %(chunk)s - 1 LIMIT 1),
       ARRAY(SELECT cellid FROM win WHERE stale)

-- name: expire_macs
-- The stale stations of a window deleted (the condition again: the window was read in this
-- transaction under the shard lock, so it holds; it is the safety net).
WITH gone AS (
    DELETE FROM ichnaea.{table}
    WHERE mac = ANY(%(keys)s::bytea[])
      AND greatest(last_seen, block_last, created::date) < %(before)s
    RETURNING 1
)
SELECT count(*), NULL::int[], NULL::int[], NULL::int[] FROM gone

-- name: expire_cells
-- As expire_macs, plus the areas (mcc, mnc, lac) that lost a positioned cell, to recompute.
WITH gone AS (
    DELETE FROM ichnaea.{table}
    WHERE cellid = ANY(%(keys)s::bytea[])
      AND greatest(last_seen, block_last, created::date) < %(before)s
    RETURNING mcc, mnc, lac, lat IS NOT NULL AND lon IS NOT NULL AS positioned
), areas AS (
    SELECT DISTINCT mcc, mnc, lac FROM gone WHERE positioned
)
SELECT (SELECT count(*) FROM gone),
       (SELECT array_agg(mcc ORDER BY mcc, mnc, lac) FROM areas),
       (SELECT array_agg(mnc ORDER BY mcc, mnc, lac) FROM areas),
       (SELECT array_agg(lac ORDER BY mcc, mnc, lac) FROM areas)

-- name: cleanup_datamap_chunk
-- At most `chunk` grid cells not modified since before `before` (found by the modified index).
WITH gone AS (
    DELETE FROM ichnaea.{table}
    WHERE grid = ANY(ARRAY(SELECT grid FROM ichnaea.{table}
                           WHERE modified < %(before)s LIMIT %(chunk)s))
      AND modified < %(before)s
    RETURNING 1
)
SELECT count(*) FROM gone

-- name: cleanup_stat
-- Daily increments before `before` deleted without changing any total of the `stat` view:
-- per key their sum is added to the key's first increment on or after `before`, or, when it
-- has none, kept as one row on its last old day.
WITH old AS (
    SELECT key, max(time) AS last, sum(value)::bigint AS total
    FROM ichnaea.stat_daily WHERE time < %(before)s GROUP BY key
), target AS (
    SELECT o.key, o.total,
           coalesce((SELECT min(s.time) FROM ichnaea.stat_daily AS s
                     WHERE s.key = o.key AND s.time >= %(before)s), o.last) AS time
    FROM old AS o
), gone AS (
    DELETE FROM ichnaea.stat_daily AS d USING target AS t
    WHERE d.key = t.key AND d.time < %(before)s AND d.time <> t.time
    RETURNING 1
), folded AS (
    UPDATE ichnaea.stat_daily AS d
    SET value = CASE WHEN t.time >= %(before)s THEN d.value + t.total ELSE t.total END
    FROM target AS t
    WHERE d.key = t.key AND d.time = t.time
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM folded)

-- name: rebuild_region_stat
-- The seed's update_statregion (migration 0016), one statement: per region the cells of each
-- radio (gsm 0, wcdma 2, lte 3: the sum of the areas' num_cells) and the wifi and Bluetooth
-- stations (the two placeholders below: a region_count_part per shard, joined by UNION ALL);
-- stations and areas without a region are not counted. Rows whose counts did not change are
-- left alone (no dead rows for nothing); regions with nothing left are deleted. The delete and
-- the upsert touch disjoint rows, and both read the statement's one snapshot, so the table
-- goes from one consistent count to the next. Returns the regions counted, the rows written
-- and the rows deleted.
WITH counted (region, kind, n) AS (
    SELECT region, CASE radio WHEN 0 THEN 'gsm' WHEN 2 THEN 'wcdma' WHEN 3 THEN 'lte' END,
           sum(num_cells)
    FROM ichnaea.cell_area
    WHERE region IS NOT NULL AND radio IN (0, 2, 3)
    GROUP BY region, radio
    UNION ALL
    {wifi}
    UNION ALL
    {blue}
), stat AS (
    SELECT region,
           coalesce(sum(n) FILTER (WHERE kind = 'gsm'), 0)::bigint AS gsm,
           coalesce(sum(n) FILTER (WHERE kind = 'wcdma'), 0)::bigint AS wcdma,
           coalesce(sum(n) FILTER (WHERE kind = 'lte'), 0)::bigint AS lte,
           coalesce(sum(n) FILTER (WHERE kind = 'blue'), 0)::bigint AS blue,
           coalesce(sum(n) FILTER (WHERE kind = 'wifi'), 0)::bigint AS wifi
    FROM counted
    GROUP BY region
), gone AS (
    DELETE FROM ichnaea.region_stat AS r
    WHERE NOT EXISTS (SELECT 1 FROM stat AS s WHERE s.region = r.region)
    RETURNING 1
), written AS (
    INSERT INTO ichnaea.region_stat AS r (region, gsm, wcdma, lte, blue, wifi)
    SELECT region, gsm, wcdma, lte, blue, wifi FROM stat ORDER BY region
    ON CONFLICT (region) DO UPDATE
    SET gsm = EXCLUDED.gsm, wcdma = EXCLUDED.wcdma, lte = EXCLUDED.lte, blue = EXCLUDED.blue,
        wifi = EXCLUDED.wifi
    WHERE (r.gsm, r.wcdma, r.lte, r.blue, r.wifi)
          IS DISTINCT FROM (EXCLUDED.gsm, EXCLUDED.wcdma, EXCLUDED.lte, EXCLUDED.blue,
                            EXCLUDED.wifi)
    RETURNING 1
)
SELECT (SELECT count(*) FROM stat), (SELECT count(*) FROM written), (SELECT count(*) FROM gone)

-- name: region_count_part
-- One wifi or Bluetooth shard's part of rebuild_region_stat; the kind is 'wifi' or 'blue'.
SELECT region, {kind}, count(*) FROM ichnaea.{table} WHERE region IS NOT NULL GROUP BY region

-- name: region_stat
SELECT region, gsm, wcdma, lte, blue, wifi FROM ichnaea.region_stat ORDER BY region

-- name: prune_batches
-- At most `chunk` of the batch records applied before `before`, oldest first (found by the
-- applied_at index of migration 0016), deleted; the condition again as the safety net.
WITH gone AS (
    DELETE FROM ichnaea.station_batches
    WHERE batch_id = ANY(ARRAY(SELECT batch_id FROM ichnaea.station_batches
                               WHERE applied_at < %(before)s
                               ORDER BY applied_at LIMIT %(chunk)s))
      AND applied_at < %(before)s
    RETURNING 1
)
SELECT count(*) FROM gone
