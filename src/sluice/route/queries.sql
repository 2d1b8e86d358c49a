-- Named queries of the routing stage (sluice.route.repository.RouteLedger).

-- name: lock_scan
-- Scans of one table take turns (schedulers on several machines over one Incoming): the
-- second records only what the first left unrecorded, under the snapshot the first set.
SELECT pg_advisory_xact_lock(hashtext('sluice.route.scan'), %(feed_id)s::int)

-- name: cursor
SELECT start_after FROM sluice.cubic_cursors WHERE feed_id = %(feed_id)s

-- name: set_cursor
INSERT INTO sluice.cubic_cursors (feed_id, start_after) VALUES (%(feed_id)s, %(start_after)s)
ON CONFLICT (feed_id) DO UPDATE SET start_after = EXCLUDED.start_after, updated_at = now()

-- name: known_versions
-- The versions of these keys the ledger already has (any status): a listing records only
-- the others, so a load that ended (or was superseded by a restart) is never revived.
SELECT key, version FROM sluice.units
WHERE kind = %(kind)s AND feed_id = %(feed_id)s AND store = %(store)s
  AND key = ANY(%(keys)s::text[])

-- name: units_of
SELECT id, key, version FROM sluice.units
WHERE kind = %(kind)s AND feed_id = %(feed_id)s AND store = %(store)s
  AND id = ANY(%(ids)s::bigint[])

-- name: snapshot
SELECT snapshot, unit_id FROM sluice.cubic_snapshots WHERE feed_id = %(feed_id)s

-- name: set_snapshot
INSERT INTO sluice.cubic_snapshots (feed_id, snapshot, unit_id)
VALUES (%(feed_id)s, %(snapshot)s, %(unit_id)s)
ON CONFLICT (feed_id) DO UPDATE
SET snapshot = EXCLUDED.snapshot, unit_id = EXCLUDED.unit_id, updated_at = now()

-- name: supersede_snapshot
-- A restart of the table (a new snapshot): the older snapshot's loads still waiting will
-- never be ingested; they say so instead of waiting in `ready` forever.
UPDATE sluice.units u
SET status = 'superseded', finished_at = now(),
    error = 'the table was restarted: snapshot ' || %(stamp)s || ' replaces this load''s '
            || COALESCE(to_char(c.snapshot AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"'),
                        'missing') || ' snapshot'
FROM sluice.cubic_loads c
WHERE c.unit_id = u.id AND c.feed_id = %(feed_id)s
  AND u.status IN ('ready', 'ready_for_ingesting')
  AND (c.snapshot IS NULL OR c.snapshot < %(snapshot)s)
RETURNING u.id

-- name: record_load
INSERT INTO sluice.cubic_loads (unit_id, feed_id, snapshot, is_change, batch)
VALUES (%(unit_id)s, %(feed_id)s, %(snapshot)s, %(is_change)s, %(batch)s)
ON CONFLICT (unit_id) DO NOTHING

-- name: batched
-- New loads put in their batch: from now on the ingest lane hands them out.
UPDATE sluice.units SET status = 'ready_for_ingesting'
WHERE id = ANY(%(unit_ids)s::bigint[]) AND status = 'ready'

-- name: next_batch
SELECT nextval('sluice.cubic_batches')

-- name: to_error
-- A load that cannot be ingested as it arrived (zero bytes, no snapshot yet) goes to Error.
UPDATE sluice.units SET status = 'ready_for_erroring', error = %(reason)s
WHERE id = %(unit_id)s AND status = 'ready'
RETURNING id

-- name: set_reason
UPDATE sluice.cubic_loads SET reason = %(reason)s, updated_at = now()
WHERE unit_id = %(unit_id)s

-- name: load_facts
SELECT c.snapshot, c.is_change, c.reason, u.modified, u.error, u.size
FROM sluice.cubic_loads c JOIN sluice.units u ON u.id = c.unit_id
WHERE c.unit_id = %(unit_id)s

-- name: ingested
UPDATE sluice.cubic_loads
SET lake_table = %(lake_table)s, lake_snapshot_id = %(snapshot_id)s,
    rows_written = %(rows)s, rejects = %(rejects)s, move_error = NULL, updated_at = now()
WHERE unit_id = %(unit_id)s

-- name: moved
UPDATE sluice.cubic_loads
SET archive_key = COALESCE(%(archive_key)s, archive_key),
    error_key = COALESCE(%(error_key)s, error_key),
    kept_beside = COALESCE(%(kept_beside)s, kept_beside), move_error = NULL, updated_at = now()
WHERE unit_id = %(unit_id)s

-- name: defer_move
-- A move whose outcome stayed unknown through every attempt: it waits and is tried again,
-- with the error kept on the load (the unit's own error is cleared when it finishes).
UPDATE sluice.units
SET next_attempt_at = now() + make_interval(secs => %(seconds)s), attempts = 0
WHERE id = %(unit_id)s

-- name: move_failed
UPDATE sluice.cubic_loads SET move_error = %(error)s, updated_at = now()
WHERE unit_id = %(unit_id)s

-- name: tables_overview
SELECT f.name, f.active, f.options, s.snapshot,
       count(u.id) FILTER (WHERE u.status IN ('ready', 'ready_for_ingesting')) AS waiting,
       count(u.id) FILTER (WHERE u.status = 'archived') AS archived,
       count(u.id) FILTER (WHERE u.status = 'errored') AS errored,
       count(u.id) AS loads
FROM sluice.feeds f
LEFT JOIN sluice.cubic_snapshots s ON s.feed_id = f.id
LEFT JOIN sluice.units u ON u.feed_id = f.id AND u.kind = %(kind)s
WHERE f.kind = %(feed_kind)s
GROUP BY f.id, f.name, f.active, f.options, s.snapshot
ORDER BY f.name

-- name: status_counts
SELECT f.name, u.status, count(*)::bigint
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE f.kind = %(feed_kind)s AND u.kind = %(kind)s
GROUP BY f.name, u.status
ORDER BY f.name, u.status

-- name: loads
SELECT u.id, f.name AS table_name, u.key, u.status, u.size, u.modified, c.snapshot,
       c.is_change, c.lake_table, c.lake_snapshot_id, c.rows_written, c.rejects,
       c.archive_key, c.error_key, c.kept_beside, COALESCE(c.reason, u.error) AS reason,
       c.move_error, c.batch
FROM sluice.units u
JOIN sluice.feeds f ON f.id = u.feed_id
LEFT JOIN sluice.cubic_loads c ON c.unit_id = u.id
WHERE f.kind = %(feed_kind)s AND u.kind = %(kind)s
  AND (%(table)s::text IS NULL OR f.name = %(table)s)
  AND (%(status)s::text IS NULL OR u.status = %(status)s)
ORDER BY f.name, u.key, u.id
LIMIT %(limit)s
