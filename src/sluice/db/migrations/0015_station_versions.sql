-- A version per station table, moved by every statement that writes the table (a statement
-- trigger), to the writing transaction's id: a station updater keeps the rows it read and
-- wrote in memory and trusts them only while their table still has the version it saw. Any
-- other writer — another updater, the expiry, an operator's SQL — moves the version and so
-- sends the updater back to the table. A transaction that rolls back takes its version with
-- it, and a transaction id never comes again, so no stale version can ever match.

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
        EXECUTE format(
            'CREATE TRIGGER station_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
            ' ON ichnaea.%I FOR EACH STATEMENT EXECUTE FUNCTION ichnaea.station_written()',
            name);
    END LOOP;
END
$$;
