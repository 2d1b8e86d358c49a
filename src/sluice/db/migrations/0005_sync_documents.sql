-- What a hierarchical sync read, so that the next sync of a scope reads only what changed.
--
-- Per scope of a tree (a dataset folder, the depositions named) synced from a store:
-- sync_scopes holds the digest of every object below the scope and its version, with the
-- sync's options; a scope whose digest did not change is not read again at all.
-- sync_partitions holds, per partition of the scope (a run folder), the digest of what is
-- below it and the row it gave: a partition whose digest did not change keeps its rows as they
-- are, and none of its documents is read. sync_documents holds the version of every document
-- the sync read. All three change in the transaction of the scope's rows, so they never claim
-- a state the rows do not have.

CREATE TABLE sluice.sync_scopes (
    store text NOT NULL,
    tree text NOT NULL,
    scope text NOT NULL,
    digest text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, tree, scope)
);

CREATE TABLE sluice.sync_partitions (
    store text NOT NULL,
    tree text NOT NULL,
    scope text NOT NULL,
    path text NOT NULL,
    digest text NOT NULL,
    row_id bigint NOT NULL,
    PRIMARY KEY (store, tree, scope, path)
);

CREATE TABLE sluice.sync_documents (
    store text NOT NULL,
    tree text NOT NULL,
    scope text NOT NULL,
    key text NOT NULL,
    version text NOT NULL,
    PRIMARY KEY (store, tree, scope, key)
);
