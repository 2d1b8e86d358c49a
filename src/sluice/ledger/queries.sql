-- Named queries of the ledger (schema sluice). Loaded by sluice.db.queries.
-- Every status change here is checked twice: by sluice.ledger.states (the repository method
-- calls check() for each edge the query may take) and by the units_transition trigger.
-- Statuses are parameters: the queue serves every kind of unit and every lane of its state
-- machine with the same statements.

-- name: upsert_target
INSERT INTO sluice.targets (name, spec, serving_view)
VALUES (%(name)s, %(spec)s, %(serving_view)s)
ON CONFLICT (name) DO UPDATE
    SET spec = EXCLUDED.spec, serving_view = EXCLUDED.serving_view
RETURNING id

-- name: upsert_feed
-- Registering a feed again updates its declaration but never resumes a paused feed.
INSERT INTO sluice.feeds (name, kind, target_id, source_url, pattern, options, schedule,
                          max_active, ordered)
VALUES (%(name)s, %(kind)s, %(target_id)s, %(source_url)s, %(pattern)s, %(options)s,
        %(schedule)s, %(max_active)s, %(ordered)s)
ON CONFLICT (name) DO UPDATE
    SET kind = EXCLUDED.kind, target_id = EXCLUDED.target_id,
        source_url = EXCLUDED.source_url, pattern = EXCLUDED.pattern,
        options = EXCLUDED.options, schedule = EXCLUDED.schedule,
        max_active = EXCLUDED.max_active, ordered = EXCLUDED.ordered, updated_at = now()
RETURNING id, active

-- name: feed_rows
SELECT id, name, kind, target_id, source_url, pattern, active, options, schedule, max_active,
       ordered, next_scan_at, last_scan_at, scan_error
FROM sluice.feeds
WHERE (%(names)s::text[] IS NULL OR name = ANY(%(names)s::text[]))
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
ORDER BY name

-- name: set_active
UPDATE sluice.feeds SET active = %(active)s, updated_at = now()
WHERE name = %(name)s
RETURNING id

-- name: due_feeds
-- Feeds whose next scan is due; SKIP LOCKED lets several schedulers share the feeds, each
-- due scan taken by one of them.
SELECT id, name, schedule
FROM sluice.feeds
WHERE active AND next_scan_at <= now() AND id = ANY(%(ids)s::bigint[])
ORDER BY next_scan_at, id
FOR NO KEY UPDATE SKIP LOCKED

-- name: plan_scan
UPDATE sluice.feeds SET next_scan_at = %(next_scan_at)s WHERE id = %(feed_id)s

-- name: scanned
UPDATE sluice.feeds SET last_scan_at = now(), scan_error = %(error)s WHERE id = %(feed_id)s

-- name: start_run
INSERT INTO sluice.runs (command, owner, owner_pid, kind, units, heartbeat_at)
VALUES (%(command)s, %(owner)s, pg_backend_pid(), %(kind)s, %(units)s, now())
RETURNING id

-- name: abandon_dead_runs
-- A run whose owning connection is gone was killed; say so instead of showing it running.
UPDATE sluice.runs r
SET status = 'abandoned', finished_at = now(),
    error = 'the process running it stopped before finishing'
WHERE r.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid)
RETURNING id

-- name: adopt_run
-- A run that carries on on a new ledger connection (the old one broke) is that one's now.
UPDATE sluice.runs
SET owner_pid = pg_backend_pid(), status = 'running', finished_at = NULL, error = NULL
WHERE id = %(run_id)s

-- name: update_run
-- The counts so far of a run that is still going (a daemon, a worker).
UPDATE sluice.runs
SET heartbeat_at = now(), discovered = %(discovered)s, claimed = %(claimed)s,
    loaded = %(loaded)s, errored = %(errored)s, retried = %(retried)s, rows_in = %(rows_in)s,
    inserted = %(inserted)s, updated = %(updated)s, unchanged = %(unchanged)s,
    rejected = %(rejected)s, deleted = %(deleted)s, hooks = %(hooks)s, counts = %(counts)s
WHERE id = %(run_id)s AND status = 'running'

-- name: finish_run
UPDATE sluice.runs
SET status = %(status)s, finished_at = now(), heartbeat_at = now(),
    discovered = %(discovered)s, claimed = %(claimed)s, loaded = %(loaded)s,
    errored = %(errored)s, retried = %(retried)s, rows_in = %(rows_in)s,
    inserted = %(inserted)s, updated = %(updated)s, unchanged = %(unchanged)s,
    rejected = %(rejected)s, deleted = %(deleted)s, hooks = %(hooks)s, counts = %(counts)s,
    error = %(error)s
WHERE id = %(run_id)s

-- name: discover
-- Record unit versions; a version already known is left alone (never done twice).
INSERT INTO sluice.units (kind, feed_id, store, key, version, etag, size, modified)
SELECT %(kind)s, %(feed_id)s, %(store)s, o.key, o.version, o.etag, o.size, o.modified
FROM unnest(%(keys)s::text[], %(versions)s::text[], %(etags)s::text[], %(sizes)s::bigint[],
            %(modifieds)s::timestamptz[]) AS o (key, version, etag, size, modified)
ON CONFLICT (kind, feed_id, store, key, version) DO NOTHING
RETURNING id, key

-- name: revive_listed
-- A superseded version that the listing shows again (the object came back byte for byte, or
-- reverted to it) is present and not loaded: it goes back to the queue.
UPDATE sluice.units u
SET status = 'ready', attempts = 0, next_attempt_at = now(), finished_at = NULL,
    error = NULL, error_detail = NULL
FROM unnest(%(keys)s::text[], %(versions)s::text[]) AS o (key, version)
WHERE u.kind = %(kind)s AND u.feed_id = %(feed_id)s AND u.store = %(store)s
  AND u.key = o.key AND u.version = o.version AND u.status = 'superseded'
RETURNING u.id

-- name: supersede_older
-- A waiting unit whose object now has another version (a new one, or one revived) will never
-- be readable as it was; an errored one no longer matters (its error stays on the row).
UPDATE sluice.units l
SET status = 'superseded', finished_at = now(),
    error = CASE WHEN l.status = 'errored' THEN l.error
                 ELSE 'a newer version of the object was discovered (load ' || n.id || ')' END
FROM sluice.units n
WHERE n.id = ANY(%(new_ids)s::bigint[])
  AND l.kind = n.kind AND l.feed_id = n.feed_id AND l.store = n.store AND l.key = n.key
  AND l.id <> n.id
  AND l.status IN ('ready', 'ready_for_ingesting', 'errored')
RETURNING l.id

-- name: lock_limited_feeds
-- Claims on feeds with a concurrency limit (or an order) take turns, so that the count of
-- units in hand, read by the claim that follows in the same transaction, is exact.
SELECT id FROM sluice.feeds
WHERE id = ANY(%(feed_ids)s::bigint[]) AND (ordered OR max_active IS NOT NULL)
ORDER BY id
FOR NO KEY UPDATE

-- name: claim_commit_async
-- A claim is a lease: if the server loses it in a crash, the unit is simply back in the
-- queue, as after a lease expiry. So its commit does not wait for the disk; the commit of the
-- unit's work, which does, writes the claim to disk before it (the log is written in order),
-- and a worker whose claim was lost cannot commit its work (it no longer holds the lease).
SET LOCAL synchronous_commit = off

-- name: claim
-- Take up to `limit` units of one kind from status `ready` into status `leased`, in key
-- order, among those sluice.claim_window() allows (feed limits and order). SKIP LOCKED lets
-- any number of workers claim at once without waiting on each other or taking the same unit
-- twice; the window (per feed, `window` more than `limit`) leaves each of them units to take.
WITH chosen AS (
    SELECT u.id FROM sluice.units u
    WHERE u.id IN (
            SELECT c.id
            FROM sluice.claim_window(%(kind)s, %(ready)s, %(leased)s, %(blocking)s::text[],
                                     %(feed_ids)s::bigint[], %(unit_id)s::bigint,
                                     %(limit)s::int + %(window)s::int) c)
      -- Checked again on the row itself: a unit another claim took and committed after this
      -- statement's snapshot is re-read when locked, and must no longer qualify.
      AND u.status = %(ready)s AND u.kind = %(kind)s
    ORDER BY u.key, u.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE sluice.units u
SET status = %(leased)s, attempts = u.attempts + 1, lease_owner = %(owner)s,
    lease_until = now() + make_interval(secs => %(lease_seconds)s),
    lease_pid = pg_backend_pid(), run_id = %(run_id)s, finished_at = NULL,
    -- the clock's time: the transaction may have begun before a wait for the feed's lock
    started_at = clock_timestamp()
FROM chosen c
WHERE u.id = c.id AND u.status = %(ready)s
RETURNING u.id, u.kind, u.feed_id, u.store, u.key, u.version, u.etag, u.size, u.status,
          u.attempts, u.run_id

-- name: candidates
-- Units a claim could take now, not handed to a broker in the last `quiet_seconds`; they are
-- marked as handed over. Nothing is claimed here.
UPDATE sluice.units u
SET enqueued_at = now()
FROM sluice.claimable(%(kind)s, %(ready)s, %(leased)s, %(blocking)s::text[],
                      %(feed_ids)s::bigint[]) c
WHERE u.id = c.id
  AND (u.enqueued_at IS NULL
       OR u.enqueued_at < now() - make_interval(secs => %(quiet_seconds)s))
RETURNING u.id

-- name: unit_feed
SELECT feed_id FROM sluice.units WHERE id = %(unit_id)s

-- name: next_retry_in
-- Seconds until the earliest waiting unit of these feeds may be claimed (NULL: none waits).
SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8
FROM sluice.units
WHERE feed_id = ANY(%(feed_ids)s::bigint[]) AND kind = %(kind)s AND status = %(ready)s

-- name: reclaim_expired
-- Leases whose owner stopped renewing them, or whose owner's connection is gone (the worker
-- process died), return their units to the queue, or fail them after too many attempts.
UPDATE sluice.units l
SET status = CASE WHEN l.attempts >= %(max_attempts)s THEN %(failed)s::text
                  ELSE %(ready)s::text END,
    error = CASE WHEN l.attempts >= %(max_attempts)s
                 THEN 'abandoned after ' || l.attempts || ' attempts: the worker holding it '
                      || 'stopped (last owner ' || l.lease_owner || ')'
                 ELSE 'worker ' || l.lease_owner || ' stopped; returned to the queue' END,
    next_attempt_at = now(), lease_owner = NULL, lease_until = NULL, lease_pid = NULL,
    finished_at = CASE WHEN l.attempts >= %(max_attempts)s THEN now() END
WHERE l.kind = %(kind)s AND l.status = %(leased)s
  AND l.feed_id = ANY(%(feed_ids)s::bigint[])
  AND (l.lease_until < now()
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.lease_pid))
RETURNING l.id, l.status

-- name: heartbeat
UPDATE sluice.units
SET lease_until = now() + make_interval(secs => %(lease_seconds)s), lease_pid = pg_backend_pid()
WHERE lease_owner = %(owner)s AND lease_until IS NOT NULL
RETURNING id

-- name: progress
UPDATE sluice.units SET bytes_read = %(bytes_read)s, rows_in = %(rows_in)s
WHERE id = %(unit_id)s AND lease_owner = %(owner)s AND lease_until IS NOT NULL

-- name: finish_unit
-- Runs inside the unit's data transaction: the data and this status commit together. Its
-- time is the clock's (now() would be the transaction's start, when the work began).
UPDATE sluice.units
SET status = %(status)s, rows_in = %(rows_in)s, rows_inserted = %(inserted)s,
    rows_updated = %(updated)s, rows_unchanged = %(unchanged)s, rows_rejected = %(rejected)s,
    rows_deleted = %(deleted)s, bytes_read = %(bytes_read)s, rejects_key = %(rejects_key)s,
    error = NULL, error_detail = NULL, finished_at = clock_timestamp(), lease_owner = NULL,
    lease_until = NULL, lease_pid = NULL
WHERE id = %(unit_id)s AND lease_owner = %(owner)s AND status = %(leased)s
RETURNING feed_id

-- name: bump_target
UPDATE sluice.targets t SET changes_seq = t.changes_seq + 1, last_change_at = now()
FROM sluice.feeds f
WHERE f.id = %(feed_id)s AND t.id = f.target_id

-- name: end_attempt
-- Outside the data transaction (which rolled back): record why the attempt ended.
UPDATE sluice.units
SET status = %(status)s, error = %(error)s, error_detail = %(error_detail)s,
    next_attempt_at = now() + make_interval(secs => %(delay_seconds)s),
    finished_at = CASE WHEN %(status)s = %(ready)s THEN NULL ELSE now() END,
    bytes_read = %(bytes_read)s, lease_owner = NULL, lease_until = NULL, lease_pid = NULL
WHERE id = %(unit_id)s AND lease_owner = %(owner)s AND status = %(leased)s
RETURNING id

-- name: retry_units
UPDATE sluice.units u
SET status = %(to_status)s, attempts = 0, next_attempt_at = now(), error = NULL,
    error_detail = NULL, finished_at = NULL
FROM sluice.feeds f
WHERE u.feed_id = f.id AND u.kind = %(kind)s AND u.status = ANY(%(from_statuses)s::text[])
  AND (%(feed_names)s::text[] IS NULL OR f.name = ANY(%(feed_names)s::text[]))
  AND (%(unit_ids)s::bigint[] IS NULL OR u.id = ANY(%(unit_ids)s::bigint[]))
RETURNING u.id

-- name: pending_units
-- Units of these feeds not done yet for a lane: waiting, backing off or in hand.
SELECT count(*)::bigint
FROM sluice.units
WHERE feed_id = ANY(%(feed_ids)s::bigint[]) AND kind = %(kind)s
  AND status = ANY(%(statuses)s::text[])

-- name: others_of_feed
-- The units of a feed besides one: waiting in a lane's ready status, in hand, and waiting but
-- already handed to a broker (other worker processes may take them any moment).
SELECT count(*) FILTER (WHERE status = %(ready)s)::bigint,
       count(*) FILTER (WHERE status = %(leased)s)::bigint,
       count(*) FILTER (WHERE status = %(ready)s AND enqueued_at IS NOT NULL)::bigint
FROM sluice.units
WHERE feed_id = %(feed_id)s AND kind = %(kind)s AND id <> %(unit_id)s
  AND status IN (%(ready)s, %(leased)s)

-- name: key_loaded_before
-- Whether another version of this object was loaded into the feed's target before.
SELECT EXISTS (
    SELECT 1 FROM sluice.units
    WHERE feed_id = %(feed_id)s AND kind = %(kind)s AND store = %(store)s AND key = %(key)s
      AND id <> %(unit_id)s
      AND status IN ('loaded', 'ready_for_archiving', 'archiving', 'archived'))

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
SELECT f.name, t.status, sum(t.units)::bigint
FROM sluice.unit_tallies t JOIN sluice.feeds f ON f.id = t.feed_id
GROUP BY f.name, t.status
HAVING sum(t.units) <> 0
ORDER BY f.name, t.status

-- name: compact_tallies
-- Fold the running totals into one row per group. Safe beside writers (they only append) and
-- beside another compaction (which, not getting the lock, leaves the rows to this one).
WITH turn AS (SELECT pg_try_advisory_xact_lock(hashtext('sluice.unit_tallies')) AS mine),
gone AS (DELETE FROM sluice.unit_tallies WHERE (SELECT mine FROM turn) RETURNING *)
INSERT INTO sluice.unit_tallies
SELECT feed_id, kind, status, le, sum(units), sum(rows), sum(bytes), sum(seconds)
FROM gone
GROUP BY feed_id, kind, status, le
HAVING sum(units) <> 0 OR sum(rows) <> 0 OR sum(bytes) <> 0

-- name: recent_errors
SELECT u.id, f.name, u.store || '/' || u.key, u.status, u.attempts, u.error, u.finished_at
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE u.error IS NOT NULL AND u.status IN ('errored', 'ready', 'ready_for_erroring')
ORDER BY u.finished_at DESC NULLS FIRST, u.id DESC
LIMIT %(limit)s

-- name: leased_units
-- Units in hand, with their owner, its connection's pid, their age and whether the owner is
-- still there (an owner gone means the unit returns to the queue at the next claim).
SELECT u.id, f.name, u.key, u.status, u.lease_owner, u.lease_pid,
       EXTRACT(EPOCH FROM now() - u.started_at)::float8 AS age,
       EXTRACT(EPOCH FROM u.lease_until - now())::float8 AS lease_left,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = u.lease_pid) AS owner_alive
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE u.lease_owner IS NOT NULL
ORDER BY u.started_at, u.id

-- name: recent_runs
SELECT id, command, status, started_at, finished_at, claimed, loaded, errored, rows_in,
       inserted, updated, unchanged, rejected, deleted, hooks, error, kind, units, counts,
       owner
FROM sluice.runs
ORDER BY id DESC
LIMIT %(limit)s

-- name: targets_overview
SELECT name, serving_view, changes_seq, refreshed_seq, last_change_at, refreshed_at
FROM sluice.targets
ORDER BY name

-- name: feeds_overview
SELECT f.name, f.kind, f.active, f.schedule, f.max_active, f.ordered, f.source_url, f.pattern,
       f.last_scan_at, f.next_scan_at, f.scan_error,
       COALESCE(t.waiting, 0)::bigint AS waiting, COALESCE(l.leased, 0)::bigint AS leased,
       COALESCE(t.done, 0)::bigint AS done, COALESCE(t.errored, 0)::bigint AS errored
FROM sluice.feeds f
LEFT JOIN (
    SELECT feed_id,
           sum(units) FILTER (WHERE status IN ('ready', 'ready_for_ingesting')) AS waiting,
           sum(units) FILTER (WHERE status IN ('loaded', 'archived')) AS done,
           sum(units) FILTER (WHERE status = 'errored') AS errored
    FROM sluice.unit_tallies
    GROUP BY feed_id
) AS t ON t.feed_id = f.id
LEFT JOIN (
    SELECT feed_id, count(*) AS leased
    FROM sluice.units
    WHERE lease_owner IS NOT NULL
    GROUP BY feed_id
) AS l ON l.feed_id = f.id
WHERE (%(names)s::text[] IS NULL OR f.name = ANY(%(names)s::text[]))
ORDER BY f.name

-- name: list_units
SELECT u.id, u.kind, f.name AS feed, u.store, u.key, u.version, u.etag, u.size, u.modified,
       u.status, u.attempts, u.rows_in, u.rows_inserted, u.rows_updated, u.rows_unchanged,
       u.rows_rejected, u.rows_deleted, u.bytes_read, u.rejects_key, u.error, u.error_detail,
       u.lease_owner, u.lease_pid, u.lease_until, u.run_id, u.next_attempt_at,
       u.discovered_at, u.started_at, u.finished_at
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE (%(kind)s::text IS NULL OR u.kind = %(kind)s::text)
  AND (%(unit_id)s::bigint IS NULL OR u.id = %(unit_id)s::bigint)
  AND (%(feed)s::text IS NULL OR f.name = %(feed)s::text)
  AND (%(status)s::text IS NULL OR u.status = %(status)s::text)
ORDER BY u.id DESC
LIMIT %(limit)s

-- name: loads_of_run
SELECT u.id, f.name, u.key, u.status, u.rows_in, u.rows_inserted, u.rows_updated,
       u.rows_unchanged, u.rows_rejected, u.error
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE u.run_id = %(run_id)s
ORDER BY u.key, u.id

-- name: staging_leftovers
-- Staging tables (load_<load id>_<attempt>, and its _delta) whose attempt is no longer being
-- worked on by a live worker.
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'sluice_staging'
WHERE c.relkind = 'r'
  AND NOT EXISTS (
      SELECT 1 FROM sluice.units l
      WHERE c.relname IN ('load_' || l.id || '_' || l.attempts,
                          'load_' || l.id || '_' || l.attempts || '_delta')
        AND l.lease_owner IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.lease_pid))

-- name: throughput
-- Rows and bytes done per minute over the last `minutes` minutes, per kind of unit.
SELECT date_trunc('minute', finished_at) AS minute, kind,
       sum(COALESCE(rows_in, 0))::bigint AS rows, sum(COALESCE(bytes_read, 0))::bigint AS bytes,
       count(*)::bigint AS units
FROM sluice.units
WHERE finished_at >= now() - make_interval(mins => %(minutes)s)
  AND status IN ('loaded', 'archived')
GROUP BY 1, 2
ORDER BY 1, 2

-- name: metrics_units
-- Units by feed, kind and status, with their rows and bytes, from the running totals.
SELECT f.name AS feed, t.kind, t.status, sum(t.units)::bigint AS units,
       sum(t.rows)::bigint AS rows, sum(t.bytes)::bigint AS bytes
FROM sluice.unit_tallies t JOIN sluice.feeds f ON f.id = t.feed_id
GROUP BY 1, 2, 3
HAVING sum(t.units) <> 0
ORDER BY 1, 2, 3

-- name: metrics_oldest_waiting
-- Seconds since the oldest unit waiting to be claimed was found, per feed and kind.
SELECT f.name AS feed, u.kind, EXTRACT(EPOCH FROM now() - min(u.discovered_at))::float8 AS age
FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id
WHERE u.status IN ('ready', 'ready_for_ingesting')
GROUP BY 1, 2
ORDER BY 1, 2

-- name: metrics_durations
-- Units done and their seconds per feed and duration bucket (not yet cumulative).
SELECT f.name AS feed, t.le, sum(t.units)::bigint AS units, sum(t.seconds)::float8 AS seconds
FROM sluice.unit_tallies t JOIN sluice.feeds f ON f.id = t.feed_id
WHERE t.le IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2

-- name: metrics_workers
-- Worker processes alive: runs of kind worker or service still running, heard from lately.
SELECT kind, count(*)::bigint
FROM sluice.runs
WHERE status = 'running' AND heartbeat_at >= now() - make_interval(secs => %(seconds)s)
  AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = owner_pid)
GROUP BY 1

-- name: metrics_refreshes
-- The last refresh of each serving view, from the runs' hooks: for each view, the runs walked
-- back from the newest until one refreshed it (the history is not read).
SELECT t.serving_view AS view, last.seconds
FROM sluice.targets t
CROSS JOIN LATERAL (
    SELECT (h->>'seconds')::float8 AS seconds
    FROM sluice.runs r, jsonb_array_elements(r.hooks) AS h
    WHERE r.hooks @> jsonb_build_array(jsonb_build_object(
              'kind', 'refresh', 'status', 'ok', 'view', t.serving_view))
      AND h->>'kind' = 'refresh' AND h->>'status' = 'ok' AND h->>'view' = t.serving_view
    ORDER BY r.id DESC
    LIMIT 1
) AS last
WHERE t.serving_view IS NOT NULL

-- name: ping
SELECT 1
