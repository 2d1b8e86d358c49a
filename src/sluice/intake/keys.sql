-- Named queries of the API keys of an intake. `{schema}` is the schema of the `api_key` table,
-- composed as an identifier by sluice.intake.keys.

-- name: get_key
SELECT valid_key, maxreq, allow_fallback, allow_locate, allow_region, store_sample_locate,
       store_sample_submit
FROM {schema}.api_key
WHERE valid_key = %(valid_key)s

-- name: list_keys
SELECT valid_key, maxreq, allow_fallback, allow_locate, allow_region, store_sample_locate,
       store_sample_submit
FROM {schema}.api_key
ORDER BY valid_key

-- name: add_key
-- Nothing when the key exists already (the caller says so).
INSERT INTO {schema}.api_key (valid_key, maxreq, allow_locate, allow_region, allow_fallback,
                              store_sample_locate, store_sample_submit)
VALUES (%(valid_key)s, %(maxreq)s, %(allow_locate)s, %(allow_region)s, %(allow_fallback)s,
        %(store_sample_locate)s, %(store_sample_submit)s)
ON CONFLICT (valid_key) DO NOTHING
RETURNING valid_key

-- name: update_key
-- Only the columns flagged `set_<column>` change.
UPDATE {schema}.api_key
SET maxreq = CASE WHEN %(set_maxreq)s THEN %(maxreq)s ELSE maxreq END,
    store_sample_submit = CASE WHEN %(set_store_sample_submit)s
                               THEN %(store_sample_submit)s ELSE store_sample_submit END,
    store_sample_locate = CASE WHEN %(set_store_sample_locate)s
                               THEN %(store_sample_locate)s ELSE store_sample_locate END,
    modified_at = now()
WHERE valid_key = %(valid_key)s
RETURNING valid_key

-- name: remove_key
DELETE FROM {schema}.api_key WHERE valid_key = %(valid_key)s RETURNING valid_key
