-- Named queries of serving copies (sluice.targets' serving columns).
-- Loaded by sluice.db.queries; the statements composed from a table's declaration are in
-- sluice.load.serving_sql.

-- name: register_serving
-- A given state wins (a serving view created now, a relation to replace); else an
-- incremental target keeps the state it has, and one that was not incremental must be built.
UPDATE sluice.targets
SET serving_kind = %(kind)s::text,
    serving_state = CASE
        WHEN %(kind)s::text IS DISTINCT FROM 'incremental' THEN NULL
        WHEN %(state)s::text IS NOT NULL THEN %(state)s::text
        WHEN serving_kind = 'incremental' AND serving_state IS NOT NULL THEN serving_state
        ELSE 'build'
    END
WHERE id = %(target_id)s
RETURNING serving_state

-- name: serving_for_load
-- Inside a load's transaction: whether it must hold the rows it changes. The row lock lasts
-- until the load commits, so a build (which locks the row FOR UPDATE) starts only after the
-- loads that held nothing have committed, and reads their rows.
SELECT serving_kind, serving_state
FROM sluice.targets
WHERE id = %(target_id)s
FOR KEY SHARE

-- name: serving_due
-- The targets among these whose serving copy has work to do: a copy older than the table's
-- last change (every load that changed rows bumped changes_seq, in its own transaction), or
-- a copy to build.
SELECT t.id, t.name, t.serving_view, t.serving_kind, t.serving_state, t.changes_seq
FROM sluice.targets t
WHERE t.id = ANY(%(target_ids)s::bigint[]) AND t.serving_view IS NOT NULL
  AND (t.changes_seq > t.refreshed_seq OR t.serving_state = 'build')
ORDER BY t.name

-- name: serving_target
SELECT changes_seq, serving_state
FROM sluice.targets
WHERE id = %(target_id)s

-- name: lock_target
-- A build waits for the loads in flight on the target (they hold the row FOR KEY SHARE) and
-- keeps new ones waiting until it commits.
SELECT changes_seq, serving_state
FROM sluice.targets
WHERE id = %(target_id)s
FOR UPDATE

-- name: serving_applied
UPDATE sluice.targets
SET refreshed_seq = GREATEST(refreshed_seq, %(seq)s), refreshed_at = now(),
    serving_state = %(state)s
WHERE id = %(target_id)s

-- name: serving_overview
-- Per target: its serving copy's kind and state, and its change counters.
SELECT t.name, t.serving_view, t.serving_kind, t.serving_state, t.changes_seq,
       t.refreshed_seq, t.refreshed_at
FROM sluice.targets t
ORDER BY t.name
