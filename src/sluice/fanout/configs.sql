-- Named queries of the export configs. `{schema}` is the schema of the `export_config` table,
-- composed as an identifier by sluice.fanout.configs.

-- name: list_configs
SELECT name, batch, schema AS kind, url, skip_keys, skip_sources, max_age_seconds, max_attempts
FROM {schema}.export_config
ORDER BY name

-- name: add_config
-- Nothing when the name is taken (the caller says so).
INSERT INTO {schema}.export_config (name, batch, schema, url, skip_keys, skip_sources,
                                    max_age_seconds, max_attempts)
VALUES (%(name)s, %(batch)s, %(kind)s, %(url)s, %(skip_keys)s, %(skip_sources)s,
        %(max_age_seconds)s, %(max_attempts)s)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: update_config
UPDATE {schema}.export_config
SET batch = %(batch)s, url = %(url)s, skip_keys = %(skip_keys)s,
    skip_sources = %(skip_sources)s, max_age_seconds = %(max_age_seconds)s,
    max_attempts = %(max_attempts)s, modified_at = now()
WHERE name = %(name)s
RETURNING name

-- name: remove_config
DELETE FROM {schema}.export_config WHERE name = %(name)s RETURNING name
