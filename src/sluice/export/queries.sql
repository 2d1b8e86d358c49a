-- Named queries of exports on the ledger (schema sluice). Loaded by sluice.export.repository.

-- name: day_units
-- The partition units already recorded for some days of a feed, with their status.
SELECT id, key, store, version, status
FROM sluice.units
WHERE feed_id = %(feed_id)s AND kind = %(kind)s AND key = ANY(%(keys)s::text[])
ORDER BY key, id

-- name: record_partition
-- What the export of a day found and wrote; in the transaction that finishes its unit.
INSERT INTO sluice.partitions (feed_id, day, unit_id, outcome, fingerprint, source_tables,
                               source_rows, output_rows, rejected_rows, bytes, location,
                               rejects_location, snapshot_id, timings, started_at)
VALUES (%(feed_id)s, %(day)s, %(unit_id)s, %(outcome)s, %(fingerprint)s, %(source_tables)s,
        %(source_rows)s, %(output_rows)s, %(rejected_rows)s, %(bytes)s, %(location)s,
        %(rejects_location)s, %(snapshot_id)s, %(timings)s, %(started_at)s)
ON CONFLICT (feed_id, day) DO UPDATE
    SET unit_id = EXCLUDED.unit_id, outcome = EXCLUDED.outcome,
        fingerprint = EXCLUDED.fingerprint, source_tables = EXCLUDED.source_tables,
        source_rows = EXCLUDED.source_rows, output_rows = EXCLUDED.output_rows,
        rejected_rows = EXCLUDED.rejected_rows, bytes = EXCLUDED.bytes,
        location = EXCLUDED.location, rejects_location = EXCLUDED.rejects_location,
        snapshot_id = EXCLUDED.snapshot_id, timings = EXCLUDED.timings,
        started_at = EXCLUDED.started_at, finished_at = now(),
        exports = sluice.partitions.exports + 1

-- name: partitions
SELECT p.day, p.outcome, p.fingerprint, p.source_tables, p.source_rows, p.output_rows,
       p.rejected_rows, p.bytes, p.location, p.rejects_location, p.snapshot_id, p.timings,
       p.exports, p.started_at, p.finished_at, p.unit_id
FROM sluice.partitions p JOIN sluice.feeds f ON f.id = p.feed_id
WHERE f.name = %(feed)s
  AND (%(start)s::date IS NULL OR p.day >= %(start)s::date)
  AND (%(end)s::date IS NULL OR p.day < %(end)s::date)
ORDER BY p.day

-- name: day_statuses
-- Days of each export feed by status: the unit's status, with 'empty' for days whose last
-- export found no source tables.
SELECT f.name,
       CASE WHEN u.status = 'loaded' AND p.outcome = 'empty' THEN 'empty' ELSE u.status END
           AS status,
       count(DISTINCT u.key)::bigint AS days
FROM sluice.units u
JOIN sluice.feeds f ON f.id = u.feed_id
LEFT JOIN sluice.partitions p ON p.feed_id = u.feed_id AND p.unit_id = u.id
WHERE u.kind = %(kind)s AND u.status <> 'superseded'
  AND NOT (u.status = 'loaded' AND p.unit_id IS NULL)
GROUP BY 1, 2
ORDER BY 1, 2
