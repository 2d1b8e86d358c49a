"""What the held rows of an incremental serving copy guarantee: between a run's loads and its
apply, the view shows exactly the state of the last apply, whatever the loads changed
(updates, inserts, deletes, rows whose key has a NULL), and after the apply the table's."""

from __future__ import annotations

import random
from pathlib import Path

import psycopg
from psycopg import sql

from sluice.api import Engine
from sluice.load import serving_sql as sv
from sluice.load import statements as st
from sluice.load.serving import RowHolder
from sluice.load.spec import Column, Feed, ServingView, TableSpec


def _spec(mode: str) -> TableSpec:
    return TableSpec(
        name="prices",
        columns=(
            Column("sku", "text", nullable=False),
            Column("region", "text"),  # part of the key, and nullable
            Column("price", "integer"),
        ),
        key=("sku", "region") if mode == "upsert" else (),
        mode=mode,  # type: ignore[arg-type]
        serving=ServingView("view_prices"),
    )


def _rows(db: psycopg.Connection, name: str) -> list[tuple[object, ...]]:
    query = sql.SQL("SELECT id, sku, region, price FROM {} ORDER BY id").format(
        sql.Identifier(name)
    )
    return db.execute(query).fetchall()


def _write(bucket: Path, rows: dict[tuple[str, str | None], int]) -> None:
    lines = [
        f"{sku},{region if region is not None else ''},{price}\n"
        for (sku, region), price in rows.items()
    ]
    (bucket / "prices.csv").write_text("".join(lines))


def _held(db: psycopg.Connection) -> int:
    row = db.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(sv.held_name("view_prices")))
    ).fetchone()
    assert row is not None
    return int(row[0])


def _rounds(engine: Engine, tmp_path: Path, db: psycopg.Connection, mode: str, seed: int) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    feed = Feed(name="prices", table=_spec(mode), source=str(bucket), pattern=r"prices\.csv")
    rng = random.Random(seed)
    rows: dict[tuple[str, str | None], int] = {
        (f"s{i}", rng.choice(["eu", "us", None])): rng.randrange(100) for i in range(60)
    }
    _write(bucket, rows)
    engine.run_feeds([feed])
    assert _rows(db, "view_prices") == _rows(db, "prices")
    for _ in range(4):
        # Random edits: new values, rows gone, new keys (some with a NULL region).
        for key in rng.sample(sorted(rows, key=str), 15):
            rows[key] = rng.randrange(100, 200)
        for key in rng.sample(sorted(rows, key=str), 5):
            del rows[key]
        for _ in range(5):
            rows[(f"n{rng.randrange(10**6)}", rng.choice(["eu", None]))] = rng.randrange(100)
        _write(bucket, rows)
        before = _rows(db, "view_prices")

        loaded = engine.run_feeds([feed], refresh=False)

        assert loaded.ok and loaded.loads
        assert _rows(db, "prices") != before  # the table changed...
        assert _rows(db, "view_prices") == before  # ...the view did not, not even in part
        assert _held(db) > 0
        applied = engine.refresh_views([feed])
        assert [h["method"] for h in applied.hooks] == ["apply"]
        assert _rows(db, "view_prices") == _rows(db, "prices")
        assert _held(db) == 0


def test_an_upserting_feed_with_nullable_keys_shows_nothing_before_the_apply(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    _rounds(engine, tmp_path, db, "upsert", seed=11)


def test_a_replacing_feed_shows_nothing_before_the_apply(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    _rounds(engine, tmp_path, db, "replace", seed=12)


def _served_prices(engine: Engine, tmp_path: Path) -> tuple[Path, Feed]:
    """An upserting feed of one row, imported: its serving copy is ready."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    feed = Feed(name="prices", table=_spec("upsert"), source=str(bucket), pattern=r"prices\.csv")
    _write(bucket, {("a", "eu"): 1})
    engine.run_feeds([feed])
    return bucket, feed


def test_a_key_inserted_and_applied_while_a_load_merges_is_held_by_that_load(
    engine: Engine, tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    """Load B matches its rows, finds key k new; meanwhile load A inserts k and commits, and
    A's run applies (k is no longer held); then B's insert updates k. B must hold k as A left
    it, so that readers see B's value only after B's own apply."""
    bucket, feed = _served_prices(engine, tmp_path)
    spec = feed.table
    staging = "race_b"
    recorder = RowHolder(spec)
    with psycopg.connect(database_url) as b:
        b.execute(st.create_staging(spec, staging))
        b.execute("INSERT INTO sluice_staging.race_b VALUES ('k', 'eu', 200)")
        b.execute(st.classify(spec, staging))  # B's match: k is new (B's transaction stays open)

        _write(bucket, {("a", "eu"): 1, ("k", "eu"): 100})
        assert engine.run_feeds([feed]).hooks[0]["method"] == "apply"  # A: k inserted, applied
        assert ("k", "eu", 100) in [r[1:] for r in _rows(db, "view_prices")]

        recorder.matched(b, staging)
        b.execute(st.update_changed(spec, staging))
        recorder.new_keys(b, staging)
        row = b.execute(
            st.insert_new(spec, staging, hold_absent=recorder.hold_absent("sluice_key"))
        ).fetchone()
        assert row == (0, 1)  # not inserted: B's insert updated A's row
        b.execute(sql.SQL("UPDATE sluice.targets SET changes_seq = changes_seq + 1"))
        b.execute(st.drop_delta(staging))
        b.execute(st.drop_staging(staging))
        b.commit()

    assert ("k", "eu", 200) in [r[1:] for r in _rows(db, "prices")]
    assert ("k", "eu", 100) in [r[1:] for r in _rows(db, "view_prices")]  # A's, until B applies
    engine.refresh_views([feed])
    assert _rows(db, "view_prices") == _rows(db, "prices")


def test_ids_another_session_took_inside_a_loads_range_are_not_held_by_it(
    engine: Engine, tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    """A load holds the ids its inserts drew as absent, by their range. Another session's
    block of ids can fall inside that range (each caches 1,000): its row, committed and
    served already, must stay in the view."""
    _, feed = _served_prices(engine, tmp_path)
    spec = feed.table
    holder = RowHolder(spec)
    insert = (
        "INSERT INTO prices (sku, region, price) "
        "SELECT 'x' || g, 'eu', g FROM generate_series(1, %s) g"
    )
    with psycopg.connect(database_url) as a, psycopg.connect(database_url, autocommit=True) as b:
        mark = holder.mark(a)  # draws a block of 1,000 ids for this session
        a.execute(insert, [999])  # the rest of that block
        b.execute("INSERT INTO prices (sku, region, price) VALUES ('other', 'eu', 7)")  # next block
        a.execute(insert.replace("'x'", "'y'"), [10])  # a block after the other session's
        holder.since(a, mark)
        a.execute("UPDATE sluice.targets SET changes_seq = changes_seq + 1")  # as a load does
        a.commit()

    assert _held(db) == 1009
    assert ("other", "eu", 7) in [r[1:] for r in _rows(db, "view_prices")]
    engine.refresh_views([feed])
    assert _rows(db, "view_prices") == _rows(db, "prices")
