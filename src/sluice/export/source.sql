-- Named queries on a source of day-partitioned tables (loaded by sluice.export.source).
-- Table names are matched with anchored regular expressions given as parameters.

-- name: find_tables
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname ~ %(pattern)s
ORDER BY c.relname

-- name: table_versions
-- What says a table changed without reading it: its identity (dropped and created again), its
-- file (truncated, rewritten) and the server's cumulative counts of rows written to it.
SELECT c.relname, c.oid::bigint, c.relfilenode::bigint,
       COALESCE(s.n_tup_ins, 0), COALESCE(s.n_tup_upd, 0), COALESCE(s.n_tup_del, 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname ~ %(pattern)s
ORDER BY c.relname

-- name: snapshot
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY

-- name: export_snapshot
-- Shared with the connections that read the day's tables, so they all see this snapshot.
SELECT pg_export_snapshot()
