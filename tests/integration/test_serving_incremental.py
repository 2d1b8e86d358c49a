"""Incremental serving copies (the default): a view over the target and the rows each load held
back as they were, released in one transaction at the end of the run; the readers' indexes
are built on the target in bulk, once.

After every kind of import the serving view equals the target table row for row (a full
EXCEPT both ways); readers never see half an apply and never wait; a run that changed nothing
does no serving work; the copies of different targets never wait for each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sluice.api import Engine, open_engine
from sluice.config import Settings
from sluice.load import serving_sql as sv
from sluice.load.serving import APPLICATION_NAME, LOCK_NAMESPACE, serving_overview
from sluice.load.spec import Column, Feed, ServingView, TableSpec
from sluice.recipes.glam.api import generate, import_aggregates
from sluice.recipes.glam.tables import table_spec

DESKTOP = "glam_desktop_nightly_aggregation"
SERVING = f"view_{DESKTOP}"
HELD = sv.held_name(SERVING)
#: The indexes GLAM's readers use, on the target.
READERS = {"btree (version)", "hash (metric)", "btree (os)"}


def differences(db: psycopg.Connection, spec: TableSpec) -> int:
    """Rows in one of the target and its serving table and not in the other (EXCEPT ALL both
    ways, over every column of the serving copy)."""
    assert spec.serving is not None
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in sv.columns(spec))
    base = sql.Identifier(spec.schema, spec.name)
    copy = sql.Identifier(spec.schema, spec.serving.name)
    row = db.execute(
        sql.SQL(
            "SELECT count(*) FROM ((SELECT {c} FROM {b} EXCEPT ALL SELECT {c} FROM {s}) "
            "UNION ALL (SELECT {c} FROM {s} EXCEPT ALL SELECT {c} FROM {b})) d"
        ).format(c=cols, b=base, s=copy)
    ).fetchone()
    assert row is not None
    return int(row[0])


def assert_served(db: psycopg.Connection, spec: TableSpec) -> None:
    assert spec.serving is not None
    assert differences(db, spec) == 0
    count = sql.SQL("SELECT count(*) FROM {}")
    base = db.execute(count.format(sql.Identifier(spec.name))).fetchone()
    served = db.execute(count.format(sql.Identifier(spec.serving.name))).fetchone()
    assert base == served
    held = sql.Identifier(spec.schema, sv.held_name(spec.serving.name))
    assert db.execute(count.format(held)).fetchone() == (0,)


def relkind(db: psycopg.Connection, name: str) -> str | None:
    row = db.execute("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)", [name])
    found = row.fetchone()
    return None if found is None else str(found[0])


def indexes_of(db: psycopg.Connection, name: str) -> set[str]:
    rows = db.execute(
        "SELECT regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes WHERE tablename = %s",
        [name],
    ).fetchall()
    return {str(r[0]) for r in rows}


def test_fresh_unchanged_and_changed_imports_keep_the_copy_equal(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=3000, shards=3, out=bucket)

    fresh = import_aggregates(engine, "desktop", "nightly", bucket)

    [hook] = fresh.hooks
    assert (hook["status"], hook["serving"], hook["method"]) == ("ok", "incremental", "build")
    assert hook["keys"] == 3000  # the rows the view shows from the build on
    assert relkind(db, SERVING) == "v"  # a view over the target and its held rows
    assert relkind(db, HELD) == "r"
    # The readers' indexes, built on the target (its primary key is the unique one on id),
    # beside its primary key and its unique key.
    found = indexes_of(db, DESKTOP)
    assert found >= READERS and len(found) == 5
    assert "btree (id)" in found
    assert_served(db, spec)

    generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.0)
    unchanged = import_aggregates(engine, "desktop", "nightly", bucket)
    assert unchanged.counts.unchanged == 3000
    assert unchanged.hooks == []  # nothing changed: no serving work at all
    assert_served(db, spec)

    day3 = generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.1)
    changed = import_aggregates(engine, "desktop", "nightly", bucket)
    assert changed.counts.updated == day3.changed_rows > 0
    [hook] = changed.hooks
    assert (hook["status"], hook["method"], hook["concurrently"]) == ("ok", "apply", True)
    assert hook["keys"] == day3.changed_rows  # exactly the keys the loads changed
    assert_served(db, spec)
    [status] = [s for s in serving_overview(db) if s.target == f"public.{DESKTOP}"]
    assert (status.kind, status.state, status.pending_keys, status.current) == (
        "incremental",
        "ready",
        0,
        True,
    )


def test_rows_moving_between_shards_and_keys(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=2000, shards=2, out=str(bucket))
    import_aggregates(engine, "desktop", "nightly", str(bucket))
    first, second = sorted(bucket.glob("aggs-desktop-nightly-*.csv"))
    lines0 = first.read_text().splitlines(keepends=True)
    lines1 = second.read_text().splitlines(keepends=True)

    # Shard 0's next export: half of its rows under a new version (new keys, the old ones stay
    # in the table: no deletes on import), and one row that moved in from shard 1 with a new
    # count of users.
    moved = []
    for line in lines0[: len(lines0) // 2]:
        version, rest = line.split(",", 1)
        moved.append(f"{int(version) + 1000},{rest}")
    fields = lines1[0].split(",")
    fields[8] = str(int(fields[8]) + 7)
    first.write_text("".join(moved + lines0[len(lines0) // 2 :] + [",".join(fields)]))

    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert report.counts.inserted == len(moved)
    assert report.counts.updated == 1
    [hook] = report.hooks
    assert (hook["method"], hook["keys"]) == ("apply", len(moved) + 1)
    assert_served(db, spec)
    assert db.execute(f"SELECT count(*) FROM {SERVING}").fetchone() == (2000 + len(moved),)


def test_a_replacing_feed_applies_its_deletes(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    spec = TableSpec(
        name="prices",
        columns=(Column("sku", "text", nullable=False), Column("price", "integer")),
        mode="replace",
        serving=ServingView("view_prices"),
    )
    feed = Feed(name="prices", table=spec, source=str(bucket), pattern=r"prices\.csv")
    (bucket / "prices.csv").write_text("a,1\nb,2\nc,3\n")
    engine.run_feeds([feed])
    assert_served(db, spec)

    (bucket / "prices.csv").write_text("a,1\nd,4\n")
    report = engine.run_feeds([feed])

    assert report.counts.deleted == 3 and report.counts.inserted == 2
    assert report.hooks[0]["method"] == "apply"
    assert_served(db, spec)
    assert db.execute("SELECT sku FROM view_prices ORDER BY sku").fetchall() == [("a",), ("d",)]


def test_a_second_channel_into_a_shared_table_is_applied(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    spec = table_spec("fenix", "nightly")
    generate("fenix", "nightly", rows=800, shards=2, out=bucket)
    generate("fenix", "beta", rows=500, shards=1, out=bucket)
    import_aggregates(engine, "fenix", "nightly", bucket)

    beta = import_aggregates(engine, "fenix", "beta", bucket)

    assert beta.counts.inserted == 500  # direct COPY of new shards into a table with rows
    [hook] = beta.hooks
    assert (hook["method"], hook["keys"]) == ("apply", 500)
    assert_served(db, spec)
    assert "btree (app_id)" in indexes_of(db, "glam_fenix_aggregation")


def test_switching_between_a_view_and_an_incremental_copy(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=1500, shards=1, out=bucket)
    import_aggregates(engine, "desktop", "nightly", bucket, serving="matview")
    assert relkind(db, SERVING) == "m"

    # The same table declared incremental: the view is replaced by a table, built once, even
    # though nothing changed...
    switched = import_aggregates(engine, "desktop", "nightly", bucket)
    assert switched.loads == []
    [hook] = switched.hooks
    assert (hook["serving"], hook["method"], hook["keys"]) == ("incremental", "build", 1500)
    assert relkind(db, SERVING) == "v"
    assert_served(db, spec)
    # ...then kept incrementally.
    day2 = generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.2)
    kept = import_aggregates(engine, "desktop", "nightly", bucket)
    assert (kept.hooks[0]["method"], kept.hooks[0]["keys"]) == ("apply", day2.changed_rows)
    assert_served(db, spec)
    assert import_aggregates(engine, "desktop", "nightly", bucket).hooks == []

    # And back: a view again, equal to the table.
    back = import_aggregates(engine, "desktop", "nightly", bucket, serving="matview")
    assert back.hooks == []
    assert relkind(db, SERVING) == "m"
    assert differences(db, spec) == 0
    # The incremental copy's held table and its indexes on the target are gone with it.
    assert relkind(db, HELD) is None
    found = indexes_of(db, DESKTOP)
    assert not READERS & found and len(found) == 2


def test_keys_left_by_a_run_that_did_not_apply_them_are_applied_next(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=1000, shards=1, out=bucket)
    import_aggregates(engine, "desktop", "nightly", bucket)
    day2 = generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.3)
    import_aggregates(engine, "desktop", "nightly", bucket, refresh=False)

    [status] = serving_overview(db)
    assert (status.pending_keys, status.current) == (day2.changed_rows, False)
    assert differences(db, spec) == 2 * day2.changed_rows

    report = engine.refresh_views([_desktop_feed(bucket)])

    assert (report.hooks[0]["method"], report.hooks[0]["keys"]) == ("apply", day2.changed_rows)
    assert_served(db, spec)
    [status] = serving_overview(db)
    assert (status.pending_keys, status.current) == (0, True)


def test_the_apply_reads_only_the_held_rows(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    """The apply's cost follows the rows changed, not the table: it deletes the held rows and
    reads neither the target nor anything else."""
    bucket = str(tmp_path / "bucket")
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=3000, shards=1, out=bucket)
    import_aggregates(engine, "desktop", "nightly", bucket)
    day2 = generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.1)
    import_aggregates(engine, "desktop", "nightly", bucket, refresh=False)

    scans = "SELECT pg_stat_get_xact_numscans(to_regclass(%s))"
    with db.transaction(force_rollback=True):
        released = db.execute(sv.release(spec)).rowcount
        target = db.execute(scans, [DESKTOP]).fetchone()
        held = db.execute(scans, [HELD]).fetchone()

    assert released == day2.changed_rows
    assert (target, held) == ((0,), (1,))
    # Rolled back: the rows are still held, and the run releases them.
    report = engine.refresh_views([_desktop_feed(bucket)])
    assert (report.hooks[0]["method"], report.hooks[0]["keys"]) == ("apply", released)
    assert_served(db, spec)


def _desktop_feed(bucket: str) -> Feed:
    from sluice.recipes.glam.tables import feed

    return feed("desktop", "nightly", bucket)


@pytest.fixture
def second_engine(settings: Settings) -> Iterator[Engine]:
    with open_engine(settings=settings) as opened:
        yield opened


def test_two_channels_at_once_into_their_own_tables(
    engine: Engine, second_engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    for channel in ("nightly", "beta"):
        generate("desktop", channel, rows=3000, shards=3, out=bucket)
    for engine_, channel in ((engine, "nightly"), (second_engine, "beta")):
        import_aggregates(engine_, "desktop", channel, bucket)
    for channel in ("nightly", "beta"):
        generate("desktop", channel, rows=0, shards=0, out=bucket, base=bucket, change=0.2)

    # The nightly copy is held by an apply that does not end (its per-copy lock taken here):
    # the beta import must still finish, and its copy be applied, meanwhile.
    with psycopg.connect(db.info.dsn) as holder:
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            [LOCK_NAMESPACE, f"public.{SERVING}"],
        )
        beta = import_aggregates(second_engine, "desktop", "beta", bucket)
        assert beta.hooks[0]["status"] == "ok"
        assert differences(db, table_spec("desktop", "beta")) == 0

    # Both at once, each into its own table.
    for channel in ("nightly", "beta"):
        generate("desktop", channel, rows=0, shards=0, out=bucket, base=bucket, change=0.1)
    reports = {}

    def run(engine_: Engine, channel: str) -> None:
        reports[channel] = import_aggregates(engine_, "desktop", channel, bucket)

    threads = [
        threading.Thread(target=run, args=(engine, "nightly")),
        threading.Thread(target=run, args=(second_engine, "beta")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(reports) == {"nightly", "beta"}
    for channel, report in reports.items():
        assert report.ok, channel
        assert [h["status"] for h in report.hooks] == ["ok"]
        assert differences(db, table_spec("desktop", channel)) == 0
        assert_served(db, table_spec("desktop", channel))


@pytest.mark.slow
def test_readers_see_all_or_nothing_of_an_apply_and_never_wait(
    engine: Engine, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    spec = table_spec("desktop", "nightly")
    generate("desktop", "nightly", rows=150_000, shards=3, out=bucket)
    import_aggregates(engine, "desktop", "nightly", bucket)
    day2 = generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.5)
    import_aggregates(engine, "desktop", "nightly", bucket, refresh=False)
    changed = day2.changed_rows
    # The apply releases the held rows, then waits two seconds before its commit: readers
    # must see none of the change meanwhile.
    db.execute(
        "CREATE FUNCTION pause_apply() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$"
    )
    db.execute(
        f"CREATE TRIGGER pause_apply AFTER DELETE ON {HELD} "
        "FOR EACH STATEMENT EXECUTE FUNCTION pause_apply()"
    )

    seen: list[int] = []
    slowest = [0.0]
    waits: list[tuple[object, ...]] = []
    during = [0]
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            read()
        except BaseException as exc:  # a lock timeout of 1 s, say: the test fails with it
            errors.append(exc)

    def read() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '1s'")
            # The changed rows and their new values, as the target holds them now.
            conn.execute(
                f"CREATE TEMP TABLE wanted AS SELECT b.* FROM {DESKTOP} b "
                f"JOIN {HELD} h ON h.id = b.id"
            )
            conn.execute("ANALYZE wanted")
            probe = conn.execute("SELECT min(id) FROM wanted").fetchone()
            while not done.is_set():
                applying = _applying(conn)
                # A point read: what a reader of the serving copy waits, at most.
                started = time.perf_counter()
                conn.execute(f"SELECT * FROM {SERVING} WHERE id = %s", probe).fetchall()
                slowest[0] = max(slowest[0], time.perf_counter() - started)
                row = conn.execute(
                    f"SELECT count(*) FROM {SERVING} s JOIN wanted w ON w.id = s.id "
                    "AND (s.total_users, s.histogram, s.percentiles, s.total_sample, "
                    "s.non_norm_histogram, s.non_norm_percentiles) IS NOT DISTINCT FROM "
                    "(w.total_users, w.histogram, w.percentiles, w.total_sample, "
                    "w.non_norm_histogram, w.non_norm_percentiles)"
                ).fetchone()
                assert row is not None
                seen.append(int(row[0]))
                if applying and _applying(conn):
                    during[0] += 1

    def watcher() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not done.is_set():
                waits.extend(
                    conn.execute(
                        "SELECT l.pid, l.mode, l.relation::regclass::text FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE NOT l.granted AND a.application_name <> %s "
                        "AND a.datname = current_database()",
                        [APPLICATION_NAME],
                    ).fetchall()
                )
                time.sleep(0.01)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads.append(threading.Thread(target=watcher))
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    report = engine.refresh_views([_desktop_feed(bucket)])
    time.sleep(1.0)  # reads after the commit
    done.set()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert report.hooks[0]["method"] == "apply"
    assert report.hooks[0]["keys"] == changed
    # The pause ran inside the apply, after it had released every held row: readers read
    # for two seconds with the whole release done and not committed.
    assert report.hooks[0]["seconds"] >= 2.0
    assert set(seen) <= {0, changed}  # all of the change or none of it, never a part
    assert seen[0] == 0 and changed in seen
    assert during[0] > 0  # some reads ran while the apply's transaction was open
    assert slowest[0] < 1.0
    assert waits == []  # no reader ever waited for a lock
    assert_served(db, spec)


def _applying(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND datname = current_database() AND xact_start IS NOT NULL",
        [APPLICATION_NAME],
    ).fetchone()
    return bool(row and row[0])
