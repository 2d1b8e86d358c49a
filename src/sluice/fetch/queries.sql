-- Named queries of the API fetcher's ledger (migration 0011_dmap.sql).

-- name: add_feed
INSERT INTO sluice.dmap_feeds (relative_url)
VALUES (%(relative_url)s)
ON CONFLICT (relative_url) DO NOTHING
RETURNING id

-- name: list_feeds
SELECT f.id, f.relative_url, f.last_updated_at, f.fetched_at, f.last_error,
       (SELECT count(*) FROM sluice.dmap_datasets d WHERE d.feed_id = f.id) AS datasets
FROM sluice.dmap_feeds f
ORDER BY f.relative_url

-- name: known_datasets
SELECT dataset_id, last_updated
FROM sluice.dmap_datasets
WHERE dataset_id = ANY(%(dataset_ids)s)

-- name: upsert_dataset
-- A re-published dataset (same id, newer last_updated) replaces its row.
INSERT INTO sluice.dmap_datasets (feed_id, dataset_id, type, start_date, end_date,
                                  last_updated, object_key, size)
VALUES (%(feed_id)s, %(dataset_id)s, %(type)s, %(start_date)s, %(end_date)s,
        %(last_updated)s, %(object_key)s, %(size)s)
ON CONFLICT (dataset_id) DO UPDATE
SET feed_id = EXCLUDED.feed_id, type = EXCLUDED.type, start_date = EXCLUDED.start_date,
    end_date = EXCLUDED.end_date, last_updated = EXCLUDED.last_updated,
    object_key = EXCLUDED.object_key, size = EXCLUDED.size, fetched_at = now()

-- name: fetched
-- The watermark only moves forward; NULL leaves it as it is.
UPDATE sluice.dmap_feeds
SET last_updated_at = CASE
        WHEN %(watermark)s::timestamp IS NULL THEN last_updated_at
        ELSE GREATEST(last_updated_at, %(watermark)s::timestamp) END,
    fetched_at = now(),
    last_error = %(error)s
WHERE id = %(feed_id)s

-- name: datasets
SELECT d.dataset_id, d.type, d.start_date, d.end_date, d.last_updated, d.object_key, d.size,
       d.fetched_at, f.relative_url
FROM sluice.dmap_datasets d JOIN sluice.dmap_feeds f ON f.id = d.feed_id
ORDER BY d.last_updated, d.dataset_id
