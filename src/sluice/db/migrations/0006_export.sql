-- Exports of day partitions (the mozaggregator backfill).
--
-- Each day of an export feed is a unit of kind 'partition' in sluice.units (key: the day,
-- version: a fingerprint of the day's source tables). sluice.partitions holds, per (feed, day),
-- what its last successful export found and wrote: written in the transaction that moves the
-- unit to 'loaded', so the row never claims an export the queue does not know of. A day whose
-- source had no tables is recorded with outcome 'empty' (not a failure).

CREATE TABLE sluice.partitions (
    feed_id bigint NOT NULL REFERENCES sluice.feeds (id) ON DELETE CASCADE,
    day date NOT NULL,
    unit_id bigint NOT NULL REFERENCES sluice.units (id) ON DELETE CASCADE,
    outcome text NOT NULL CHECK (outcome IN ('exported', 'empty')),
    -- the fingerprint of the source tables the export read (the unit's version)
    fingerprint text NOT NULL,
    source_tables text[] NOT NULL DEFAULT '{}',
    source_rows bigint NOT NULL DEFAULT 0,
    output_rows bigint NOT NULL DEFAULT 0,
    rejected_rows bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    location text,
    rejects_location text,
    snapshot_id bigint,
    -- seconds per phase (export, lake, warehouse)
    timings jsonb NOT NULL DEFAULT '{}',
    exports integer NOT NULL DEFAULT 1,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed_id, day)
);
