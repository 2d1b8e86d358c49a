-- Claims that cost what they take, not what waits. The claim of 0002 numbered every waiting
-- unit of the claimed feeds (a window over all of them) and checked, for each unit of an
-- ordered feed, that no unit before it was still in the lane: with 8,000 units waiting a claim
-- took 53 ms, so routing 10,000 objects spent most of its time choosing what to do next.
--
-- The rules are those of 0002. Units of `p_kind` in status `p_ready` whose retry time has
-- come, of active feeds; a feed with max_active has at most that many units in `p_leased` at
-- once; an ordered feed gives out only its first unit (by key) in one of the `p_blocking`
-- statuses, and only once none is in hand. Each feed is now read through the queue index
-- (units_queue: feed, kind, status, key, id) for just the units it may give out.

-- The feeds a claim may take from and how many units each may give out (NULL: no limit).
CREATE FUNCTION sluice.claim_room(
    p_kind text, p_leased text, p_feed_ids bigint[]
) RETURNS TABLE (feed_id bigint, ordered boolean, free int)
LANGUAGE sql STABLE AS $$
    WITH busy AS (
        SELECT u.feed_id, count(*)::int AS n
        FROM sluice.units u
        WHERE u.feed_id = ANY(p_feed_ids) AND u.kind = p_kind AND u.status = p_leased
        GROUP BY u.feed_id
    )
    SELECT f.id, f.ordered,
           CASE WHEN f.ordered THEN 1 - COALESCE(b.n, 0)
                WHEN f.max_active IS NOT NULL THEN f.max_active - COALESCE(b.n, 0)
           END
    FROM sluice.feeds f LEFT JOIN busy b ON b.feed_id = f.id
    WHERE f.id = ANY(p_feed_ids) AND f.active
$$;

-- The head of an ordered feed: its first unit (by key) in one of the blocking statuses, found
-- with one index probe per status.
CREATE FUNCTION sluice.feed_head(
    p_feed_id bigint, p_kind text, p_blocking text[]
) RETURNS TABLE (id bigint, key text, status text, next_attempt_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT h.id, h.key, h.status, h.next_attempt_at
    FROM unnest(p_blocking) AS s(status)
    CROSS JOIN LATERAL (
        SELECT e.id, e.key, e.status, e.next_attempt_at
        FROM sluice.units e
        WHERE e.feed_id = p_feed_id AND e.kind = p_kind AND e.status = s.status
        ORDER BY e.key, e.id
        LIMIT 1
    ) h
    ORDER BY h.key, h.id
    LIMIT 1
$$;

-- The units a claim could take now: per feed, at most `p_window` (NULL: all) in key order,
-- only `p_unit_id` if given. Nothing is locked: the claim locks what it takes with SKIP
-- LOCKED, from a window wider than what it takes, so claims running at once take different
-- units without waiting on each other.
CREATE FUNCTION sluice.claim_window(
    p_kind text, p_ready text, p_leased text, p_blocking text[], p_feed_ids bigint[],
    p_unit_id bigint, p_window int
) RETURNS TABLE (id bigint, key text)
LANGUAGE sql STABLE AS $$
    SELECT w.id, w.key
    FROM sluice.claim_room(p_kind, p_leased, p_feed_ids) r
    CROSS JOIN LATERAL (
        SELECT u.id, u.key
        FROM sluice.units u
        WHERE u.feed_id = r.feed_id AND u.kind = p_kind AND u.status = p_ready
          AND u.next_attempt_at <= now() AND (p_unit_id IS NULL OR u.id = p_unit_id)
        ORDER BY u.key, u.id
        LIMIT LEAST(r.free, p_window)
    ) w
    WHERE NOT r.ordered AND (r.free IS NULL OR r.free > 0)
    UNION ALL
    SELECT h.id, h.key
    FROM sluice.claim_room(p_kind, p_leased, p_feed_ids) r
    CROSS JOIN LATERAL sluice.feed_head(r.feed_id, p_kind, p_blocking) h
    WHERE r.ordered AND r.free > 0 AND h.status = p_ready AND h.next_attempt_at <= now()
      AND (p_unit_id IS NULL OR h.id = p_unit_id)
$$;

-- Every unit a claim could take now (the broker hand-out marks them).
CREATE OR REPLACE FUNCTION sluice.claimable(
    p_kind text, p_ready text, p_leased text, p_blocking text[], p_feed_ids bigint[]
) RETURNS TABLE (id bigint, key text)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.key
    FROM sluice.claim_window(p_kind, p_ready, p_leased, p_blocking, p_feed_ids, NULL, NULL) c
$$;
