-- The API fetcher's ledger: the feeds it queries and the datasets it has put into Incoming.
--
-- A feed is one endpoint of a dataset-listing API (Cubic DMAP: `relative_url` below the base
-- URL). `last_updated_at` is its watermark: the newest `last_updated` of the datasets it has
-- uploaded, moved only once every dataset of a query is in Incoming. The API's timestamps have
-- no zone (they are UTC) and microseconds matter (the next query asks for watermark + 1 µs), so
-- they are kept as `timestamp` exactly as the API wrote them.
--
-- A dataset row is written only after its file is in Incoming; keys and signed links are
-- never stored (a link carries a token and expires anyway).

CREATE TABLE sluice.dmap_feeds (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relative_url    text NOT NULL UNIQUE CHECK (relative_url LIKE '/%'),
    last_updated_at timestamp,
    created_at      timestamptz NOT NULL DEFAULT now(),
    fetched_at      timestamptz,
    -- what the last fetch of the feed found wrong (invalid results, failed datasets), if any
    last_error      text
);

CREATE TABLE sluice.dmap_datasets (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed_id      bigint NOT NULL REFERENCES sluice.dmap_feeds (id),
    dataset_id   text NOT NULL UNIQUE,
    type         text NOT NULL,
    start_date   date NOT NULL,
    end_date     date NOT NULL,
    last_updated timestamp NOT NULL,
    -- where the file went (below the Incoming location), its size, when
    object_key   text NOT NULL,
    size         bigint NOT NULL,
    fetched_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dmap_datasets_feed ON sluice.dmap_datasets (feed_id, last_updated);
