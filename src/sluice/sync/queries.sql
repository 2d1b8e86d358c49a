-- Named queries of hierarchical syncs: what a sync read, per scope (schema sluice). Loaded by
-- sluice.db.queries. Every statement is one per scope, never one per document.

-- name: scope_digest
SELECT digest FROM sluice.sync_scopes
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s

-- name: save_scope
INSERT INTO sluice.sync_scopes (store, tree, scope, digest)
VALUES (%(store)s, %(tree)s, %(scope)s, %(digest)s)
ON CONFLICT (store, tree, scope) DO UPDATE SET digest = EXCLUDED.digest, synced_at = now()
WHERE sync_scopes.digest IS DISTINCT FROM EXCLUDED.digest

-- name: partitions
SELECT path, digest, row_id FROM sluice.sync_partitions
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s

-- name: save_partitions
-- Only partitions that changed are written: an unchanged one is left as it is.
INSERT INTO sluice.sync_partitions AS p (store, tree, scope, path, digest, row_id)
SELECT %(store)s, %(tree)s, %(scope)s, u.path, u.digest, u.row_id
FROM unnest(%(paths)s::text[], %(digests)s::text[], %(row_ids)s::bigint[])
    AS u (path, digest, row_id)
ON CONFLICT (store, tree, scope, path) DO UPDATE
    SET digest = EXCLUDED.digest, row_id = EXCLUDED.row_id
WHERE (p.digest, p.row_id) IS DISTINCT FROM (EXCLUDED.digest, EXCLUDED.row_id)

-- name: drop_partitions
-- Partitions of the scope that are not among `paths` (gone, or no longer a partition).
DELETE FROM sluice.sync_partitions
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s
  AND NOT (path = ANY(%(paths)s::text[]))

-- name: documents
SELECT key, version FROM sluice.sync_documents
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s

-- name: save_documents
INSERT INTO sluice.sync_documents AS d (store, tree, scope, key, version)
SELECT %(store)s, %(tree)s, %(scope)s, u.key, u.version
FROM unnest(%(keys)s::text[], %(versions)s::text[]) AS u (key, version)
ON CONFLICT (store, tree, scope, key) DO UPDATE SET version = EXCLUDED.version
WHERE d.version IS DISTINCT FROM EXCLUDED.version

-- name: drop_documents
DELETE FROM sluice.sync_documents
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s
  AND key = ANY(%(keys)s::text[])

-- name: forget_scope
DELETE FROM sluice.sync_scopes
WHERE store = %(store)s AND tree = %(tree)s AND scope = %(scope)s

-- name: relations_present
-- How many of the named tables and indexes a tree's schema already has.
SELECT count(*) FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(names)s::text[])
