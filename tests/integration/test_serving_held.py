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
