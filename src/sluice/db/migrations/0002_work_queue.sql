-- One work queue for every kind of work.
--
-- sluice.units holds every unit of work (an object version to load, later a partition to
-- export or a batch of submissions), whatever its kind, with one set of claim and lease
-- columns. sluice.loads stays, as a view of the object-version units with the columns it
-- always had, so that the ledger's SQL interface does not change. sluice.tables, which holds
-- feeds, is renamed sluice.feeds and learns its schedule and concurrency limits.

ALTER TABLE sluice.tables RENAME TO feeds;
ALTER SEQUENCE sluice.tables_id_seq RENAME TO feeds_id_seq;
ALTER INDEX sluice.tables_pkey RENAME TO feeds_pkey;
ALTER INDEX sluice.tables_name_key RENAME TO feeds_name_key;
ALTER TABLE sluice.feeds
    -- a feed that is not a table load (a tree sync, an export) need not write one target
    ALTER COLUMN target_id DROP NOT NULL,
    ADD COLUMN schedule text NOT NULL DEFAULT '60s',
    ADD COLUMN max_active integer CHECK (max_active > 0),
    ADD COLUMN ordered boolean NOT NULL DEFAULT false,
    ADD COLUMN next_scan_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_scan_at timestamptz,
    ADD COLUMN scan_error text;

ALTER TABLE sluice.loads RENAME TO units;
ALTER SEQUENCE sluice.loads_id_seq RENAME TO units_id_seq;
ALTER INDEX sluice.loads_pkey RENAME TO units_pkey;
ALTER TABLE sluice.units RENAME COLUMN table_id TO feed_id;
ALTER TABLE sluice.units RENAME CONSTRAINT loads_table_id_fkey TO units_feed_id_fkey;
ALTER TABLE sluice.units RENAME CONSTRAINT loads_run_id_fkey TO units_run_id_fkey;
ALTER TABLE sluice.units
    ADD COLUMN kind text NOT NULL DEFAULT 'load',
    -- when a scheduler last handed the unit to a broker (Celery); the ledger stays the queue
    ADD COLUMN enqueued_at timestamptz,
    ALTER COLUMN store SET DEFAULT '',
    ALTER COLUMN version SET DEFAULT '',
    ALTER COLUMN size DROP NOT NULL;
ALTER TABLE sluice.units ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE sluice.units DROP CONSTRAINT loads_table_id_store_key_version_key;
ALTER TABLE sluice.units
    ADD CONSTRAINT units_identity UNIQUE (kind, feed_id, store, key, version);

DROP INDEX sluice.loads_queue;
DROP INDEX sluice.loads_table_status;
ALTER INDEX sluice.loads_key RENAME TO units_key;
ALTER INDEX sluice.loads_leased RENAME TO units_leased;
-- Claims: the units of some feeds, of one kind, in one status, in key order.
CREATE INDEX units_queue ON sluice.units (feed_id, kind, status, key, id);

CREATE OR REPLACE FUNCTION sluice.check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM sluice.transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'illegal % transition % -> % (% %)',
            OLD.kind, OLD.status, NEW.status, OLD.kind, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
ALTER TRIGGER loads_transition ON sluice.units RENAME TO units_transition;

-- The object versions, as they always were (an updatable view: the transition trigger of
-- sluice.units guards updates through it too).
CREATE VIEW sluice.loads AS
SELECT id, feed_id, store, key, version, etag, size, modified, status, attempts,
       next_attempt_at, lease_owner, lease_until, lease_pid, run_id, rows_in, rows_inserted,
       rows_updated, rows_unchanged, rows_rejected, rows_deleted, bytes_read, rejects_key,
       snapshot, error, error_detail, discovered_at, started_at, finished_at
FROM sluice.units
WHERE kind = 'load';

-- Runs of every command: what kind of run, what its unit counts count, and the counts that fit
-- its kind of work (a sync's rows per entity, say).
ALTER TABLE sluice.runs
    ADD COLUMN kind text NOT NULL DEFAULT 'import',
    ADD COLUMN units text NOT NULL DEFAULT 'loads',
    ADD COLUMN counts jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN heartbeat_at timestamptz;

-- The units a claim may take now, with the rules every lane shares: units of `p_kind` in
-- status `p_ready` whose retry time has come, of active feeds; a feed with max_active has at
-- most that many units in status `p_leased` at once; an ordered feed gives out only its first
-- unit (by key) in one of the `p_blocking` statuses, and only once none is in hand.
CREATE FUNCTION sluice.claimable(
    p_kind text, p_ready text, p_leased text, p_blocking text[], p_feed_ids bigint[]
) RETURNS TABLE (id bigint, key text)
LANGUAGE sql STABLE AS $$
    WITH busy AS (
        SELECT u.feed_id, count(*)::int AS n
        FROM sluice.units u
        WHERE u.feed_id = ANY(p_feed_ids) AND u.kind = p_kind AND u.status = p_leased
        GROUP BY u.feed_id
    ), room AS (
        SELECT f.id AS feed_id, f.ordered,
               CASE WHEN f.ordered THEN 1 - COALESCE(b.n, 0)
                    WHEN f.max_active IS NOT NULL THEN f.max_active - COALESCE(b.n, 0)
               END AS free
        FROM sluice.feeds f LEFT JOIN busy b ON b.feed_id = f.id
        WHERE f.id = ANY(p_feed_ids) AND f.active
    ), waiting AS (
        SELECT u.id, u.key, r.free,
               row_number() OVER (PARTITION BY u.feed_id ORDER BY u.key, u.id) AS place
        FROM sluice.units u JOIN room r ON r.feed_id = u.feed_id
        WHERE (r.free IS NULL OR r.free > 0)
          AND u.kind = p_kind AND u.status = p_ready AND u.next_attempt_at <= now()
          AND NOT (r.ordered AND EXISTS (
              SELECT 1 FROM sluice.units e
              WHERE e.feed_id = u.feed_id AND e.kind = u.kind
                AND e.status = ANY(p_blocking) AND (e.key, e.id) < (u.key, u.id)))
    )
    SELECT w.id, w.key FROM waiting w WHERE w.free IS NULL OR w.place <= w.free
$$;
