-- Incoming-bucket routing (the Cubic flow).
--
-- A Cubic table is a feed of kind 'cubic' in sluice.feeds (its prefix, kind, snapshot key,
-- raw/typed and current-view choice in options; `active` gates every step, as the claim
-- function already checks it). Each object version in Incoming is a unit of kind 'cubic' in
-- sluice.units, worked through the lanes ingest (ready → ingesting → ready_for_archiving),
-- archive and error. These tables hold what only this flow knows of them.

-- The current snapshot of each ODS table: dated by its snapshot file's .dfm
-- startWriteTimestamp (else the object's modified time), and the load that set it.
CREATE TABLE sluice.cubic_snapshots (
    feed_id     bigint PRIMARY KEY REFERENCES sluice.feeds (id) ON DELETE CASCADE,
    snapshot    timestamptz NOT NULL,
    unit_id     bigint NOT NULL REFERENCES sluice.units (id) ON DELETE CASCADE,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Where the next scan of a table resumes its listing (StartAfter); NULL: from the start.
CREATE TABLE sluice.cubic_cursors (
    feed_id      bigint PRIMARY KEY REFERENCES sluice.feeds (id) ON DELETE CASCADE,
    start_after  text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Per load: the snapshot it belongs to, what it is, where the lake and the moves put it, and
-- why it went to Error (the reason survives the move, which clears the unit's own error).
CREATE TABLE sluice.cubic_loads (
    unit_id           bigint PRIMARY KEY REFERENCES sluice.units (id) ON DELETE CASCADE,
    feed_id           bigint NOT NULL REFERENCES sluice.feeds (id) ON DELETE CASCADE,
    snapshot          timestamptz,
    is_change         boolean NOT NULL DEFAULT false,
    batch             bigint,
    lake_table        text,
    lake_snapshot_id  bigint,
    rows_written      bigint,
    rejects           bigint NOT NULL DEFAULT 0,
    archive_key       text,
    error_key         text,
    -- a move found a different object at its destination: the load was kept beside it here
    kept_beside       text,
    reason            text,
    move_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cubic_loads_feed ON sluice.cubic_loads (feed_id, snapshot);

CREATE SEQUENCE sluice.cubic_batches;

-- The lake's Iceberg catalog (pyiceberg's SQL catalog) keeps its own tables here.
CREATE SCHEMA IF NOT EXISTS sluice_lake;
