-- Current views: per ODS table, a PostgreSQL table holding its current rows (the downstream
-- CDC merge built in, schema `ods`), and this ledger row of what it holds.
--
-- One row per view: the snapshot its rows belong to, the columns it was built with (the
-- `.dfm` declaration of the snapshot's LOAD files: name, Qlik type, length, precision, scale,
-- key position), and how far the changes go (the newest `header__timestamp` applied, which
-- `sluice status` shows as the view's lag). The view's rows and this row change in the same
-- transaction as the load's ledger transition, so they never disagree.

CREATE SCHEMA IF NOT EXISTS ods;

CREATE TABLE sluice.current_views (
    view_schema text NOT NULL,
    view_table text NOT NULL,
    source_schema text NOT NULL,
    source_table text NOT NULL,
    snapshot timestamptz NOT NULL,
    columns jsonb NOT NULL,
    key_columns text[] NOT NULL,
    -- the newest header__timestamp applied (UTC); NULL until a change file is applied
    newest_change timestamptz,
    rows bigint NOT NULL DEFAULT 0,
    load_files integer NOT NULL DEFAULT 0,
    change_files integer NOT NULL DEFAULT 0,
    rebuilt_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (view_schema, view_table)
);
