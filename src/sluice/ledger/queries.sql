-- Named queries of the ledger (schema sluice). Loaded by sluice.db.queries.
-- Every status change here is checked twice: by sluice.ledger.states (the repository method
-- calls check() for each edge the query may take) and by the loads_transition trigger.

-- name: upsert_target
INSERT INTO sluice.targets (name, spec, serving_view)
VALUES (%(name)s, %(spec)s, %(serving_view)s)
ON CONFLICT (name) DO UPDATE
    SET spec = EXCLUDED.spec, serving_view = EXCLUDED.serving_view
RETURNING id

-- name: upsert_table
INSERT INTO sluice.tables (name, kind, target_id, source_url, pattern, options)
VALUES (%(name)s, %(kind)s, %(target_id)s, %(source_url)s, %(pattern)s, %(options)s)
ON CONFLICT (name) DO UPDATE
    SET kind = EXCLUDED.kind, target_id = EXCLUDED.target_id,
        source_url = EXCLUDED.source_url, pattern = EXCLUDED.pattern,
        options = EXCLUDED.options, active = true, updated_at = now()
RETURNING id

-- name: start_run
INSERT INTO sluice.runs (command, owner, owner_pid)
VALUES (%(command)s, %(owner)s, pg_backend_pid())
RETURNING id

-- name: abandon_dead_runs
-- A run whose owning connection is gone was killed; say so instead of showing it running.
UPDATE sluice.runs r
SET status = 'abandoned', finished_at = now(),
    error = 'the process running it stopped before finishing'
WHERE r.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid)
RETURNING id

-- name: finish_run
UPDATE sluice.runs
SET status = %(status)s, finished_at = now(), discovered = %(discovered)s,
    claimed = %(claimed)s, loaded = %(loaded)s, errored = %(errored)s, retried = %(retried)s,
    rows_in = %(rows_in)s, inserted = %(inserted)s, updated = %(updated)s,
    unchanged = %(unchanged)s, rejected = %(rejected)s, deleted = %(deleted)s,
    hooks = %(hooks)s, error = %(error)s
WHERE id = %(run_id)s

-- name: discover
-- Record object versions; a version already known is left alone (never loaded twice).
INSERT INTO sluice.loads (table_id, store, key, version, etag, size, modified)
SELECT %(table_id)s, %(store)s, o.key, o.version, o.etag, o.size, o.modified
FROM unnest(%(keys)s::text[], %(versions)s::text[], %(etags)s::text[], %(sizes)s::bigint[],
            %(modifieds)s::timestamptz[]) AS o (key, version, etag, size, modified)
ON CONFLICT (table_id, store, key, version) DO NOTHING
RETURNING id, key

-- name: supersede_older
-- A waiting load whose object now has a newer version will never be readable as it was; an
-- errored one no longer matters (its error stays on the row for the record).
UPDATE sluice.loads l
SET status = 'superseded', finished_at = now(),
    error = CASE WHEN l.status = 'errored' THEN l.error
                 ELSE 'a newer version of the object was discovered (load ' || n.id || ')' END
FROM sluice.loads n
WHERE n.id = ANY(%(new_ids)s::bigint[])
  AND l.table_id = n.table_id AND l.store = n.store AND l.key = n.key AND l.id < n.id
  AND l.status IN ('ready', 'ready_for_ingesting', 'errored')
RETURNING l.id

-- name: reclaim_expired
-- Leases whose owner stopped renewing them, or whose owner's connection is gone (the worker
-- process died), return their loads to the queue, or error them after too many attempts.
UPDATE sluice.loads l
SET status = CASE WHEN l.attempts >= %(max_attempts)s THEN 'errored' ELSE 'ready' END,
    error = CASE WHEN l.attempts >= %(max_attempts)s
                 THEN 'abandoned after ' || l.attempts || ' attempts: the worker holding it '
                      || 'stopped (last owner ' || l.lease_owner || ')'
                 ELSE 'worker ' || l.lease_owner || ' stopped; returned to the queue' END,
    next_attempt_at = now(), lease_owner = NULL, lease_until = NULL, lease_pid = NULL,
    finished_at = CASE WHEN l.attempts >= %(max_attempts)s THEN now() END
WHERE l.status = 'ingesting'
  AND l.table_id = ANY(%(table_ids)s::bigint[])
  AND (l.lease_until < now()
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.lease_pid))
RETURNING l.id, l.status

-- name: claim
-- Take up to `limit` ready loads; SKIP LOCKED lets any number of workers claim at once
-- without waiting on each other or taking the same load twice.
WITH candidates AS (
    SELECT id FROM sluice.loads
    WHERE table_id = ANY(%(table_ids)s::bigint[]) AND status = 'ready'
      AND next_attempt_at <= now()
    ORDER BY key, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE sluice.loads l
SET status = 'ingesting', attempts = l.attempts + 1, lease_owner = %(owner)s,
    lease_until = now() + make_interval(secs => %(lease_seconds)s),
    lease_pid = pg_backend_pid(), run_id = %(run_id)s, started_at = now(), finished_at = NULL
FROM candidates c
WHERE l.id = c.id
RETURNING l.id, l.table_id, l.store, l.key, l.version, l.etag, l.size, l.attempts

-- name: next_retry_in
-- Seconds until the earliest waiting load of these feeds may be claimed (NULL: none waits).
SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8
FROM sluice.loads
WHERE table_id = ANY(%(table_ids)s::bigint[]) AND status = 'ready'

-- name: heartbeat
UPDATE sluice.loads
SET lease_until = now() + make_interval(secs => %(lease_seconds)s), lease_pid = pg_backend_pid()
WHERE lease_owner = %(owner)s AND status = 'ingesting'
RETURNING id

-- name: progress
UPDATE sluice.loads SET bytes_read = %(bytes_read)s, rows_in = %(rows_in)s
WHERE id = %(load_id)s AND lease_owner = %(owner)s AND status = 'ingesting'

-- name: finish_load
-- Runs inside the load's data transaction: the rows and this status commit together.
UPDATE sluice.loads
SET status = %(status)s, rows_in = %(rows_in)s, rows_inserted = %(inserted)s,
    rows_updated = %(updated)s, rows_unchanged = %(unchanged)s, rows_rejected = %(rejected)s,
    rows_deleted = %(deleted)s, bytes_read = %(bytes_read)s, rejects_key = %(rejects_key)s, error = NULL,
    error_detail = NULL, finished_at = now(), lease_owner = NULL, lease_until = NULL,
    lease_pid = NULL
WHERE id = %(load_id)s AND lease_owner = %(owner)s AND status = 'ingesting'
RETURNING id

-- name: key_loaded_before
-- Whether another version of this object was loaded into the feed's target before.
SELECT EXISTS (
    SELECT 1 FROM sluice.loads
    WHERE table_id = %(table_id)s AND store = %(store)s AND key = %(key)s
      AND id <> %(load_id)s
      AND status IN ('loaded', 'ready_for_archiving', 'archiving', 'archived'))

-- name: bump_target
UPDATE sluice.targets SET changes_seq = changes_seq + 1, last_change_at = now()
WHERE id = %(target_id)s

-- name: end_attempt
-- Outside the data transaction (which rolled back): record why the attempt ended.
UPDATE sluice.loads
SET status = %(status)s, error = %(error)s, error_detail = %(error_detail)s,
    next_attempt_at = now() + make_interval(secs => %(delay_seconds)s),
    finished_at = CASE WHEN %(status)s = 'ready' THEN NULL ELSE now() END,
    bytes_read = %(bytes_read)s, lease_owner = NULL, lease_until = NULL, lease_pid = NULL
WHERE id = %(load_id)s AND lease_owner = %(owner)s AND status = 'ingesting'
RETURNING id

-- name: retry_errored
UPDATE sluice.loads l
SET status = 'ready', attempts = 0, next_attempt_at = now(), error = NULL,
    error_detail = NULL, finished_at = NULL
FROM sluice.tables t
WHERE l.table_id = t.id AND l.status = 'errored'
  AND (%(table_names)s::text[] IS NULL OR t.name = ANY(%(table_names)s::text[]))
  AND (%(load_ids)s::bigint[] IS NULL OR l.id = ANY(%(load_ids)s::bigint[]))
RETURNING l.id

-- name: stale_targets
SELECT id, name, serving_view, changes_seq
FROM sluice.targets
WHERE id = ANY(%(target_ids)s::bigint[]) AND serving_view IS NOT NULL
  AND changes_seq > refreshed_seq
ORDER BY name

-- name: mark_refreshed
UPDATE sluice.targets
SET refreshed_seq = GREATEST(refreshed_seq, %(seq)s), refreshed_at = now()
WHERE id = %(target_id)s

-- name: load_counts
SELECT t.name, l.status, count(*)::bigint
FROM sluice.loads l JOIN sluice.tables t ON t.id = l.table_id
GROUP BY t.name, l.status
ORDER BY t.name, l.status

-- name: recent_errors
SELECT l.id, t.name, l.store || '/' || l.key, l.status, l.attempts, l.error, l.finished_at
FROM sluice.loads l JOIN sluice.tables t ON t.id = l.table_id
WHERE l.error IS NOT NULL AND l.status IN ('errored', 'ready', 'ready_for_erroring')
ORDER BY l.finished_at DESC NULLS FIRST, l.id DESC
LIMIT %(limit)s

-- name: recent_runs
SELECT id, command, status, started_at, finished_at, claimed, loaded, errored, rows_in,
       inserted, updated, unchanged, rejected, deleted, hooks, error
FROM sluice.runs
ORDER BY id DESC
LIMIT %(limit)s

-- name: targets_overview
SELECT name, serving_view, changes_seq, refreshed_seq, last_change_at, refreshed_at
FROM sluice.targets
ORDER BY name

-- name: load_by_id
SELECT l.id, t.name, l.store, l.key, l.version, l.status, l.attempts, l.rows_in,
       l.rows_inserted, l.rows_updated, l.rows_unchanged, l.rows_rejected, l.bytes_read,
       l.rejects_key, l.error, l.error_detail, l.started_at, l.finished_at
FROM sluice.loads l JOIN sluice.tables t ON t.id = l.table_id
WHERE l.id = %(load_id)s

-- name: loads_of_run
SELECT l.id, t.name, l.key, l.status, l.rows_in, l.rows_inserted, l.rows_updated,
       l.rows_unchanged, l.rows_rejected, l.error
FROM sluice.loads l JOIN sluice.tables t ON t.id = l.table_id
WHERE l.run_id = %(run_id)s
ORDER BY l.key, l.id

-- name: staging_leftovers
-- Staging tables (load_<load id>_<attempt>, and its _delta) whose attempt is no longer being
-- worked on by a live worker.
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'sluice_staging'
WHERE c.relkind = 'r'
  AND NOT EXISTS (
      SELECT 1 FROM sluice.loads l
      WHERE c.relname IN ('load_' || l.id || '_' || l.attempts,
                          'load_' || l.id || '_' || l.attempts || '_delta')
        AND l.status = 'ingesting'
        AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.lease_pid))
