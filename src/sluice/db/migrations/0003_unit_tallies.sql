-- Running totals of the work queue, so that status pages and /metrics cost what the queue
-- holds now, not what its whole history holds.
--
-- Counting sluice.units at every scrape grows with every load ever made (100,000 loads: a
-- second per scrape). Instead, statement triggers on sluice.units append what each statement
-- changed to sluice.unit_tallies: per feed, kind, status and duration bucket, the change in
-- units, rows, bytes and seconds. A reader sums the rows; `compact_tallies` folds them into one
-- row per group now and then. Only appends: parallel loads never wait on a shared counter row.

CREATE TABLE sluice.unit_tallies (
    feed_id  bigint NOT NULL,
    kind     text NOT NULL,
    status   text NOT NULL,
    -- the duration histogram's bucket (its upper bound, seconds) of units done, else NULL
    le       float8,
    units    bigint NOT NULL,
    rows     bigint NOT NULL,
    bytes    bigint NOT NULL,
    seconds  float8 NOT NULL
);

-- Upper bounds of the unit-duration histogram; sluice.status.DURATION_BUCKETS is the same list
-- (a test holds them equal).
CREATE FUNCTION sluice.duration_buckets() RETURNS float8[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{0.1,0.5,1,5,10,30,60,300,1800,Infinity}'::float8[]
$$;

-- Seconds from claim to commit of a unit done (loaded or archived), else NULL.
CREATE FUNCTION sluice.unit_seconds(status text, started timestamptz, finished timestamptz)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN status IN ('loaded', 'archived') AND started IS NOT NULL
                     AND finished IS NOT NULL
                THEN EXTRACT(EPOCH FROM finished - started)::float8 END
$$;

CREATE FUNCTION sluice.unit_le(seconds float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT min(b) FROM unnest(sluice.duration_buckets()) AS b WHERE b >= seconds
$$;

CREATE FUNCTION sluice.tally_units() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql plans a statement when it first runs it, so each branch may name only the
    -- transition tables of its own event.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sluice.unit_tallies
        SELECT feed_id, kind, status, sluice.unit_le(s), count(*), sum(COALESCE(rows_in, 0)),
               sum(COALESCE(bytes_read, 0)), COALESCE(sum(s), 0)
        FROM (SELECT *, sluice.unit_seconds(status, started_at, finished_at) AS s
              FROM new_units) AS n
        GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sluice.unit_tallies
        SELECT feed_id, kind, status, sluice.unit_le(s), -count(*), -sum(COALESCE(rows_in, 0)),
               -sum(COALESCE(bytes_read, 0)), -COALESCE(sum(s), 0)
        FROM (SELECT *, sluice.unit_seconds(status, started_at, finished_at) AS s
              FROM old_units) AS o
        GROUP BY 1, 2, 3, 4;
    ELSE
        -- A heartbeat or a lease change moves nothing: its groups sum to zero, no row.
        INSERT INTO sluice.unit_tallies
        SELECT feed_id, kind, status, sluice.unit_le(s), sum(sign), sum(sign * rows_in),
               sum(sign * bytes_read), sum(sign * COALESCE(s, 0))
        FROM (
            SELECT 1 AS sign, feed_id, kind, status, COALESCE(rows_in, 0) AS rows_in,
                   COALESCE(bytes_read, 0) AS bytes_read,
                   sluice.unit_seconds(status, started_at, finished_at) AS s
            FROM new_units
            UNION ALL
            SELECT -1, feed_id, kind, status, COALESCE(rows_in, 0), COALESCE(bytes_read, 0),
                   sluice.unit_seconds(status, started_at, finished_at)
            FROM old_units
        ) AS d
        GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0 OR sum(sign * rows_in) <> 0 OR sum(sign * bytes_read) <> 0
            OR sum(sign * COALESCE(s, 0)) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER units_tally_insert AFTER INSERT ON sluice.units
    REFERENCING NEW TABLE AS new_units
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.tally_units();
CREATE TRIGGER units_tally_update AFTER UPDATE ON sluice.units
    REFERENCING OLD TABLE AS old_units NEW TABLE AS new_units
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.tally_units();
CREATE TRIGGER units_tally_delete AFTER DELETE ON sluice.units
    REFERENCING OLD TABLE AS old_units
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.tally_units();

CREATE FUNCTION sluice.tally_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sluice.unit_tallies;
    RETURN NULL;
END
$$;
CREATE TRIGGER units_tally_truncate AFTER TRUNCATE ON sluice.units
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.tally_truncate();

-- What the ledger holds so far.
INSERT INTO sluice.unit_tallies
SELECT feed_id, kind, status, sluice.unit_le(s), count(*), sum(COALESCE(rows_in, 0)),
       sum(COALESCE(bytes_read, 0)), COALESCE(sum(s), 0)
FROM (SELECT *, sluice.unit_seconds(status, started_at, finished_at) AS s
      FROM sluice.units) AS u
GROUP BY 1, 2, 3, 4;

-- The pages' other questions, answered from the few rows they are about.
CREATE INDEX units_errors ON sluice.units (finished_at DESC NULLS FIRST, id DESC)
    WHERE error IS NOT NULL AND status IN ('errored', 'ready', 'ready_for_erroring');
CREATE INDEX units_finished ON sluice.units (finished_at)
    WHERE status IN ('loaded', 'archived');
CREATE INDEX units_waiting ON sluice.units (feed_id, kind, discovered_at)
    WHERE status IN ('ready', 'ready_for_ingesting');
-- Runs pile up (a service makes one a minute): the running ones are few.
CREATE INDEX runs_running ON sluice.runs (id) WHERE status = 'running';
