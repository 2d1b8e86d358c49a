-- The Ichnaea recipe's API keys, in a schema of its own.
--
-- Schema `ichnaea`, not `sluice`: the `sluice` schema is the engine's ledger (units, runs,
-- feeds), while these rows are the recipe's own data, managed by `sluice ichnaea keys`; the
-- recipe's later tables (export configs, stations) go beside them. The table keeps the seed's
-- name and columns (ichnaea/models/api.py; `shortname` and `allow_transfer` were dropped there),
-- so that the seed's documented SQL works with search_path = ichnaea.
--
-- `store_sample_submit` and `store_sample_locate` have no default, as in the seed: NULL drops
-- every submission of the key (the CLI writes 100 unless told otherwise).

CREATE SCHEMA IF NOT EXISTS ichnaea;

CREATE TABLE ichnaea.api_key (
    -- 4-40 characters of [-0-9a-z], any case: what the submit routes accept as a key
    valid_key varchar(40) PRIMARY KEY CHECK (valid_key ~ '^[-0-9a-zA-Z]{4,40}$'),
    -- requests per day and path; NULL or 0: unlimited
    maxreq integer CHECK (maxreq >= 0),
    allow_fallback boolean NOT NULL DEFAULT false,
    allow_locate boolean NOT NULL DEFAULT true,
    allow_region boolean NOT NULL DEFAULT true,
    fallback_name varchar(40),
    fallback_schema varchar(64),
    fallback_url varchar(256),
    fallback_ratelimit integer,
    fallback_ratelimit_interval integer,
    fallback_cache_expire integer,
    -- percent of requests kept, 0-100
    store_sample_locate smallint CHECK (store_sample_locate BETWEEN 0 AND 100),
    store_sample_submit smallint CHECK (store_sample_submit BETWEEN 0 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now()
);
