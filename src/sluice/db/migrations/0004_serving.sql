-- Incremental serving copies.
--
-- A target's serving copy is either a materialized view refreshed after each run that changed
-- the table (`matview`), or a real table kept from what each run changed (`incremental`): every
-- load's merge records the surrogate keys it inserted, updated or deleted in
-- sluice.serving_pending, in the load's own transaction, and one transaction at the end of the
-- run applies exactly those keys to the serving table and deletes them.
--
-- serving_state (incremental targets only):
--   empty  the serving table exists and is empty, and so was the table when it was made;
--          nothing to build until a load changes the table
--   build  the serving copy must be built in bulk from the table (a first fill, a switch from
--          a materialized view); loads record no keys meanwhile
--   ready  the serving copy is maintained: loads record their keys, runs apply them

ALTER TABLE sluice.targets
    ADD COLUMN serving_kind text CHECK (serving_kind IN ('incremental', 'matview')),
    ADD COLUMN serving_state text CHECK (serving_state IN ('empty', 'build', 'ready'));

-- Targets registered before this migration were served by materialized views.
UPDATE sluice.targets SET serving_kind = 'matview' WHERE serving_view IS NOT NULL;

-- One row per key changed since the last apply. No foreign key to sluice.targets: a load
-- already holds its target's row (FOR KEY SHARE), and a check per recorded key would cost a
-- lookup per changed row. Keys are deduplicated by the primary key; the apply reads them in
-- target order from it.
CREATE TABLE sluice.serving_pending (
    target_id  bigint NOT NULL,
    key_id     bigint NOT NULL,
    PRIMARY KEY (target_id, key_id)
) WITH (fillfactor = 100);
