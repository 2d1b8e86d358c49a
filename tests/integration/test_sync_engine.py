"""The general sync mechanism on a small tree: shops (root, id from the metadata) with their
items (elements of a list in shop.json) and orders (one JSON file each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.api import Engine
from sluice.store import locate
from sluice.sync import BucketView, Entity, Field, Item, Pass, Syncer, Tree
from sluice.sync.finders import Elements, Files, Subfolders, dig

TREE = Tree(
    schema="shops",
    entities=(
        Entity(
            name="shop",
            table="shop",
            fields=(Field("name", "text", lambda i: dig(i.data, "name")),),
            key=(),
            identity=lambda i: dig(i.data, "id"),
            find=Subfolders("shop.json"),
            delete_stale=False,
        ),
        Entity(
            name="item",
            table="item",
            fields=(
                Field("shop_id", "bigint", nullable=False),
                Field("sku", "text", lambda i: dig(i.data, "sku")),
                Field("qty", "integer", lambda i: dig(i.data, "qty")),
                Field("position", "integer", lambda i: i.index),
                Field("note", "text"),  # never mapped: stays NULL
            ),
            key=("shop_id", "sku"),
            parent="shop",
            scope="shop_id",
            find=Elements("items"),
        ),
        Entity(
            name="order",
            table="shop_order",
            fields=(
                Field("shop_id", "bigint", nullable=False),
                Field("number", "integer", lambda i: dig(i.data, "number")),
                Field("placed", "date", lambda i: dig(i.data, "placed")),
                Field("url", "text", lambda i: i.bucket.https_url(i.path)),
            ),
            key=("shop_id", "number"),
            parent="shop",
            scope="shop_id",
            find=Files("orders/*.json"),
        ),
    ),
)


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_shops(root: Path, count: int) -> None:
    for n in range(1, count + 1):
        items = [{"sku": f"s{n}-{k}", "qty": k} for k in range(3)]
        write(root / f"shop{n}" / "shop.json", {"id": n, "name": f"Shop {n}", "items": items})
        for number in (1, 2):
            write(
                root / f"shop{n}" / "orders" / f"{number}.json",
                {"number": number, "placed": "2024-01-0" + str(number)},
            )


def sync(engine: Engine, root: Path, *, dry_run: bool = False) -> tuple[Any, BucketView]:
    store, _ = locate(str(root))
    view = BucketView(store, "shops-bucket", "https://files.example")
    syncer = Syncer(engine.db, TREE, view, enabled={"shop", "item", "order"}, dry_run=dry_run)
    syncer.ensure_schema()
    view.list_prefix("")
    items = [
        Item(path=folder, data=view.json(folder + "shop.json"))
        for folder in view.folders("")
        if view.exists(folder + "shop.json")
    ]
    return syncer.scope("shops", [Pass("shop", items)]), view


def test_creates_then_finds_nothing_to_change(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    make_shops(tmp_path, 2)
    first, _ = sync(engine, tmp_path)
    assert first.ok, first.error
    assert {n: (c.created, c.updated, c.deleted) for n, c in first.entities.items()} == {
        "shop": (2, 0, 0),
        "item": (6, 0, 0),
        "order": (4, 0, 0),
    }
    rows = db.execute(
        "SELECT shop_id, sku, qty, position, note FROM shops.item ORDER BY shop_id, sku"
    ).fetchall()
    assert rows[:3] == [(1, "s1-0", 0, 1, None), (1, "s1-1", 1, 2, None), (1, "s1-2", 2, 3, None)]
    assert db.execute("SELECT url FROM shops.shop_order ORDER BY id LIMIT 1").fetchone() == (
        "https://files.example/shop1/orders/1.json",
    )

    xmins = db.execute("SELECT xmin::text FROM shops.item ORDER BY id").fetchall()
    second, _ = sync(engine, tmp_path)
    assert not any(c.changed for c in second.entities.values())
    assert second.entities["item"].unchanged == 6
    assert db.execute("SELECT xmin::text FROM shops.item ORDER BY id").fetchall() == xmins


def test_updates_in_place_and_deletes_stale_rows_within_their_scope(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    make_shops(tmp_path, 2)
    sync(engine, tmp_path)
    ids = dict(db.execute("SELECT sku, id FROM shops.item").fetchall())

    # shop 1: one item changes, one disappears; shop 2 is untouched
    write(
        tmp_path / "shop1" / "shop.json",
        {
            "id": 1,
            "name": "Shop one",
            "items": [{"sku": "s1-0", "qty": 7}, {"sku": "s1-2", "qty": 2}],
        },
    )
    (tmp_path / "shop1" / "orders" / "2.json").unlink()
    report, _ = sync(engine, tmp_path)

    assert report.ok, report.error
    counts = {n: (c.created, c.updated, c.deleted, c.unchanged) for n, c in report.entities.items()}
    # s1-2 moved from position 3 to 2: a change too
    assert counts == {"shop": (0, 1, 0, 1), "item": (0, 2, 1, 3), "order": (0, 0, 1, 3)}
    after = dict(db.execute("SELECT sku, id FROM shops.item").fetchall())
    assert after == {k: v for k, v in ids.items() if k != "s1-1"}  # same primary keys
    assert db.execute("SELECT qty FROM shops.item WHERE sku = 's1-0'").fetchone() == (7,)


def test_an_unreadable_document_deletes_nothing(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    make_shops(tmp_path, 2)
    sync(engine, tmp_path)
    before = db.execute("SELECT count(*) FROM shops.shop_order").fetchone()

    (tmp_path / "shop2" / "orders" / "1.json").write_text("{not json")
    (tmp_path / "shop1" / "orders" / "2.json").unlink()  # would be a deletion
    report, _ = sync(engine, tmp_path)

    assert not report.ok
    assert "shop2/orders/1.json: is not valid JSON" in (report.error or "")
    assert db.execute("SELECT count(*) FROM shops.shop_order").fetchone() == before


def test_dry_run_reports_and_changes_nothing(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    make_shops(tmp_path, 1)
    report, _ = sync(engine, tmp_path, dry_run=True)

    assert report.entities["item"].created == 3
    assert ("item", "create", "shop_id=1, sku='s1-0'") in report.changes
    # not even the tables were left behind
    assert db.execute("SELECT to_regclass('shops.shop')").fetchone() == (None,)


@pytest.mark.parametrize("shops", [3, 30])
def test_statements_do_not_grow_with_the_number_of_items(
    engine: Engine, tmp_path: Path, shops: int
) -> None:
    make_shops(tmp_path, shops)
    first, view = sync(engine, tmp_path)
    again, _ = sync(engine, tmp_path)
    # the scope's lock, then per entity type: one read, and at most one insert, update, delete;
    # then what was read is recorded: the recorded partitions and documents are read, the
    # scope's digest forgotten (this scope has no prefixes), stale partitions dropped, and the
    # versions of the documents read saved (only when they changed)
    recording = 4
    assert first.statements == 1 + 3 + 3 + recording + 1  # lock + reads + inserts + record
    assert again.statements == 1 + 3 + recording
    assert view.store.requests.lists == 1
