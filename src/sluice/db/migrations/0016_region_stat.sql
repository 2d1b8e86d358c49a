-- Two pieces of the stations' daily upkeep (sluice.stations.upkeep, docs/stations.md).
--
-- The seed's `region_stat` (../shared/reference/notes/seeds-ichnaea.md §12): per region the
-- cells (SUM(num_cells) of `cell_area` per radio) and the wifi and Bluetooth stations
-- (COUNT(*) over their 16 shards), rebuilt once a day in one statement; a region with no
-- station left loses its row, and stations without a region are not counted. The station
-- tables keep no region index (migration 0015): the daily rebuild reads every shard whole
-- anyway, and an indexed region would cost every region change its HOT update.
CREATE TABLE ichnaea.region_stat (
    region char(2) PRIMARY KEY,
    gsm bigint,
    wcdma bigint,
    lte bigint,
    blue bigint,
    wifi bigint
);

-- `station_batches` is pruned by age: the upkeep deletes the rows applied before its
-- retention, oldest first and a bounded chunk at a time; this index finds them without
-- reading the rows it keeps. One entry per batch (hundreds of reports), so it costs the
-- batches next to nothing.
CREATE INDEX station_batches_applied_at_idx ON ichnaea.station_batches (applied_at);
