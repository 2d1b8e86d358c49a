-- A version per station table, moved by every statement that writes the table (a statement
-- trigger), to the writing transaction's id: a station updater keeps the rows it read and
-- wrote in memory and trusts them only while their table still has the version it saw. Any
-- other writer — another updater, the expiry, an operator's SQL — moves the version and so
-- sends the updater back to the table. A transaction that rolls back takes its version with
-- it, and a transaction id never comes again, so no stale version can ever match.
--
-- Also: the station tables lose their region index and leave 30 % of each new page free. No
-- query of sluice reads stations by region (the region counts of the seed's region_stat are
-- not built), and an indexed region made every update that sets or changes a region a
-- non-HOT update; with the index gone and more room on the page, an update stays on its page
-- and touches no index (the key never changes), so the primary key does not fill with
-- entries of dead rows that every later read of the shard probes again.

CREATE TABLE ichnaea.station_versions (
    name text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION ichnaea.station_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ichnaea.station_versions SET version = pg_current_xact_id()::text::bigint
    WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT kind || '_shard_' || to_hex(digit)
        FROM unnest(ARRAY['wifi', 'blue']) AS kind, generate_series(0, 15) AS digit
        UNION ALL
        SELECT 'cell_' || radio FROM unnest(ARRAY['gsm', 'wcdma', 'lte']) AS radio
    LOOP
        INSERT INTO ichnaea.station_versions (name) VALUES (name);
        EXECUTE format('DROP INDEX IF EXISTS ichnaea.%I', name || '_region_idx');
        EXECUTE format('ALTER TABLE ichnaea.%I SET (fillfactor = 70)', name);
        EXECUTE format(
            'CREATE TRIGGER station_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
            ' ON ichnaea.%I FOR EACH STATEMENT EXECUTE FUNCTION ichnaea.station_written()',
            name);
    END LOOP;
END
$$;
