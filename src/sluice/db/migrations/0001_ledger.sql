-- The ledger: targets, feeds (registered sources), runs and one row per object version.

CREATE SCHEMA IF NOT EXISTS sluice_staging;

-- A target table that sluice writes, with the bookkeeping of its serving view.
CREATE TABLE sluice.targets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,          -- schema-qualified relation name
    spec            jsonb NOT NULL DEFAULT '{}',   -- the declaration, for status and humans
    serving_view    text,                          -- schema-qualified materialized view
    changes_seq     bigint NOT NULL DEFAULT 0,     -- bumped by every load that changed rows
    refreshed_seq   bigint NOT NULL DEFAULT 0,     -- changes_seq covered by the last refresh
    last_change_at  timestamptz,
    refreshed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A registered source feeding one target: store URL, key pattern, per-feed options.
CREATE TABLE sluice.tables (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL DEFAULT 'postgres',
    target_id   bigint NOT NULL REFERENCES sluice.targets (id),
    source_url  text NOT NULL,
    pattern     text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    options     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per CLI command or scheduler pass.
CREATE TABLE sluice.runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command      text NOT NULL,
    owner        text NOT NULL,
    owner_pid    integer,                          -- backend pid of the owner's ledger connection
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    discovered   integer NOT NULL DEFAULT 0,
    claimed      integer NOT NULL DEFAULT 0,
    loaded       integer NOT NULL DEFAULT 0,
    errored      integer NOT NULL DEFAULT 0,
    retried      integer NOT NULL DEFAULT 0,
    rows_in      bigint NOT NULL DEFAULT 0,
    inserted     bigint NOT NULL DEFAULT 0,
    updated      bigint NOT NULL DEFAULT 0,
    unchanged    bigint NOT NULL DEFAULT 0,
    rejected     bigint NOT NULL DEFAULT 0,
    deleted      bigint NOT NULL DEFAULT 0,
    hooks        jsonb NOT NULL DEFAULT '[]',      -- post-load hooks: view refreshes, durations
    error        text
);

-- The legal status transitions, copied from sluice.ledger.states at every start-up.
CREATE TABLE sluice.transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

-- One row per object version: the unit of work and its outcome.
CREATE TABLE sluice.loads (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_id         bigint NOT NULL REFERENCES sluice.tables (id),
    store            text NOT NULL,        -- store root URL, e.g. s3://bucket or file:///data
    key              text NOT NULL,        -- object key below the store root
    version          text NOT NULL,        -- etag, else size:modified
    etag             text,
    size             bigint NOT NULL,
    modified         timestamptz,
    status           text NOT NULL DEFAULT 'ready',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_until      timestamptz,
    lease_pid        integer,              -- backend pid of the owner's ledger connection
    run_id           bigint REFERENCES sluice.runs (id),
    rows_in          bigint,
    rows_inserted    bigint,
    rows_updated     bigint,
    rows_unchanged   bigint,
    rows_rejected    bigint,
    rows_deleted     bigint,                -- rows a replacing load took the place of
    bytes_read       bigint,
    rejects_key      text,
    snapshot         text,
    error            text,
    error_detail     jsonb,
    discovered_at    timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    UNIQUE (table_id, store, key, version)
);

CREATE INDEX loads_queue ON sluice.loads (table_id, next_attempt_at, id) WHERE status = 'ready';
CREATE INDEX loads_table_status ON sluice.loads (table_id, status);
CREATE INDEX loads_key ON sluice.loads (table_id, store, key);
CREATE INDEX loads_leased ON sluice.loads (lease_until) WHERE lease_owner IS NOT NULL;

-- Refuse status changes that are not in sluice.transitions.
CREATE FUNCTION sluice.check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM sluice.transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'illegal load transition % -> % (load %)', OLD.status, NEW.status, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER loads_transition BEFORE UPDATE OF status ON sluice.loads
    FOR EACH ROW EXECUTE FUNCTION sluice.check_transition();

