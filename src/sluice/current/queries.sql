-- Named queries of current views (sluice.current_views and the views in schema ods).
-- Loaded by sluice.db.queries. A query with {placeholders} is a template: sluice.current.sql
-- fills them with psycopg.sql identifiers (names from the .dfm), column lists built of
-- identifiers, and type keywords of sluice.formats.dfm.postgres_type; values are parameters.

-- name: lock_view
-- Applies to one view take turns until their transaction ends.
SELECT pg_advisory_xact_lock(%(namespace)s, hashtext(%(name)s))

-- name: view_state
SELECT snapshot, columns, key_columns, newest_change, rows,
       to_regclass(format('%%I.%%I', view_schema, view_table)) IS NOT NULL AS present
FROM sluice.current_views
WHERE view_schema = %(schema)s AND view_table = %(table)s
FOR UPDATE

-- name: view_reset
INSERT INTO sluice.current_views
    (view_schema, view_table, source_schema, source_table, snapshot, columns, key_columns)
VALUES (%(schema)s, %(table)s, %(source_schema)s, %(source_table)s, %(snapshot)s,
        %(columns)s, %(key_columns)s)
ON CONFLICT (view_schema, view_table) DO UPDATE
SET source_schema = EXCLUDED.source_schema, source_table = EXCLUDED.source_table,
    snapshot = EXCLUDED.snapshot, columns = EXCLUDED.columns,
    key_columns = EXCLUDED.key_columns, newest_change = NULL, rows = 0, load_files = 0,
    change_files = 0, rebuilt_at = now(), applied_at = now()

-- name: view_applied
UPDATE sluice.current_views
SET rows = rows + %(inserted)s - %(deleted)s,
    newest_change = GREATEST(newest_change, %(newest_change)s),
    load_files = load_files + %(load_files)s,
    change_files = change_files + %(change_files)s,
    applied_at = now()
WHERE view_schema = %(schema)s AND view_table = %(table)s

-- name: view_lags
SELECT view_schema, view_table, snapshot, newest_change, now() - newest_change AS lag,
       rows, load_files, change_files, applied_at
FROM sluice.current_views
ORDER BY view_schema, view_table

-- name: local_setting
SELECT set_config(%(name)s, %(value)s, true)

-- name: current_setting
SELECT current_setting(%(name)s)

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: drop_view
DROP TABLE IF EXISTS {view}

-- name: create_view
-- Room on each page for the new version of an updated row: the key index is not touched
-- (a HOT update) when the page has space.
CREATE TABLE {view} ({columns}) WITH (fillfactor = 85)

-- name: create_key_index
-- One row per key, NULL key parts equal to each other.
CREATE UNIQUE INDEX {index} ON {view} ({keys}) NULLS NOT DISTINCT

-- name: create_stage
-- The file's records typed as the view's columns (COPY parses the values: a value that does
-- not parse is refused with its line and column). No record number column (an identity costs
-- more than the COPY itself): the table is new and only COPY writes it, so its rows' physical
-- order (ctid) is the file's.
CREATE TEMP TABLE {stage} ({columns}) ON COMMIT DROP

-- name: copy_stage
-- FORCE_NULL: an empty value is NULL for every type but text, quoted or not.
COPY {stage} ({columns}) FROM STDIN
    (FORMAT csv, DELIMITER {delimiter}, NULL {null}, QUOTE '"', ENCODING 'UTF8'{force_null})

-- name: unknown_oper
SELECT rec, header__change_oper
FROM (SELECT row_number() OVER (ORDER BY ctid) AS rec, header__change_oper FROM {stage}) s
WHERE header__change_oper IS NULL OR header__change_oper NOT IN ('I', 'U', 'D', 'B')
ORDER BY rec
LIMIT 1

-- name: any_unknown_oper
SELECT EXISTS (
    SELECT FROM {stage}
    WHERE header__change_oper IS NULL OR header__change_oper NOT IN ('I', 'U', 'D', 'B'))

-- name: create_final
CREATE TEMP TABLE {final} ({columns}) ON COMMIT DROP

-- name: fill_final_changes
-- The final operation per key: before-images dropped, the newest change sequence wins (the
-- later record of the file on a tie).
INSERT INTO {final} ({names})
SELECT DISTINCT ON ({keys}) {names}
FROM {stage}
WHERE header__change_oper <> 'B'
ORDER BY {keys}, header__change_seq COLLATE "C" DESC, ctid DESC

-- name: fill_final_load
-- A LOAD file's rows, the last record per key, as of the snapshot.
INSERT INTO {final} ({names})
SELECT DISTINCT ON ({keys}) {values}, %(seq)s::text, 'L'::text, %(at)s::timestamp
FROM {stage}
ORDER BY {keys}, ctid DESC

-- name: fill_view_load
-- The first LOAD file of a new snapshot, straight into the empty view (indexed after).
INSERT INTO {view} ({names})
SELECT DISTINCT ON ({keys}) {values}, %(seq)s::text, 'L'::text, %(at)s::timestamp
FROM {stage}
ORDER BY {keys}, ctid DESC

-- name: fill_view_load_keyless
INSERT INTO {view} ({names})
SELECT {values}, %(seq)s::text, 'L'::text, %(at)s::timestamp
FROM {stage}

-- name: fill_final_load_keyless
INSERT INTO {final} ({names})
SELECT {values}, %(seq)s::text, 'L'::text, %(at)s::timestamp
FROM {stage}

-- name: final_summary
SELECT count(*),
       count(*) FILTER (WHERE header__change_oper = 'D'),
       count(*) FILTER (WHERE header__change_oper = 'D' AND ({null_key})),
       count(*) FILTER (WHERE header__change_oper <> 'D' AND ({null_key})),
       max(header__timestamp)
FROM {final}

-- name: delete_keys
-- Keys without a NULL part: plain equality (the key index, or a hash join).
DELETE FROM {view} v USING {final} f
WHERE f.header__change_oper = 'D' AND {equal}

-- name: delete_null_keys
-- Keys with a NULL part: the key parts compared as one composite value, where NULL equals
-- NULL (IS NOT DISTINCT FROM, part by part) and the join can still hash.
DELETE FROM {view} v USING {final} f
WHERE f.header__change_oper = 'D' AND ({null_key_f}) AND {same}

-- name: upsert
-- Updates of the keys the view holds, then inserts of the others (the view as of the
-- statement's start tells which): every column the file carries is set, a change to NULL
-- included. No tuple lock is taken before an update (as INSERT ... ON CONFLICT would).
WITH u AS (
    UPDATE {view} v SET ({assign}) = ROW({assigned})
    FROM {final} f
    WHERE f.header__change_oper <> 'D' AND {equal}
    RETURNING f.ctid AS row
), i AS (
    INSERT INTO {view} ({names})
    SELECT {names} FROM {final} f
    WHERE f.header__change_oper <> 'D' AND NOT ({null_key_f})
      AND NOT EXISTS (SELECT FROM u WHERE u.row = f.ctid)
    RETURNING 1
)
SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM u)

-- name: upsert_null_keys
-- The same for keys with a NULL part, matched as composite values (see delete_null_keys).
WITH u AS (
    UPDATE {view} v SET ({assign}) = ROW({assigned})
    FROM {final} f
    WHERE f.header__change_oper <> 'D' AND ({null_key_f}) AND {same}
    RETURNING f.ctid AS row
), i AS (
    INSERT INTO {view} ({names})
    SELECT {names} FROM {final} f
    WHERE f.header__change_oper <> 'D' AND ({null_key_f})
      AND NOT EXISTS (SELECT FROM u WHERE u.row = f.ctid)
    RETURNING 1
)
SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM u)

-- name: rewrite_deleted
-- Of a rewrite's deletes, those of keys the view holds. (A rewrite is only chosen when no final
-- key has a NULL part: plain equality matches.)
SELECT count(*) FROM {final} f
WHERE f.header__change_oper = 'D' AND EXISTS (SELECT FROM {view} v WHERE {equal})

-- name: count_view
SELECT count(*) FROM {view}

-- name: create_rewrite
CREATE TABLE {new} (LIKE {view}) WITH (fillfactor = 85)

-- name: fill_rewrite
-- The view's rows of keys the file does not touch, and the file's final rows (with the view's
-- values of the columns the file does not carry).
INSERT INTO {new} ({all})
SELECT {all_v} FROM {view} v WHERE NOT EXISTS (SELECT FROM {final} f WHERE {equal})
UNION ALL
SELECT {merged} FROM {final} f {join} WHERE f.header__change_oper <> 'D'

-- name: drop_table
DROP TABLE {view}

-- name: rename_table
ALTER TABLE {new} RENAME TO {table}

-- name: insert_all
INSERT INTO {view} ({names}) SELECT {names} FROM {final}

-- name: drop_temp
DROP TABLE IF EXISTS {stage}, {final}
