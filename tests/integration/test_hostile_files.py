"""Hostile input, class 5: untrusted files and text — links out of a local bucket, writes
through a read-only query command."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.store import locate
from tests.integration.hostile import Conn, count, events_feed, loads, shard, write


def test_links_out_of_a_local_bucket_are_not_followed(
    engine: Engine, tmp_path: Path, db: Conn
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    outside = tmp_path / "private"
    outside.mkdir()
    write(outside, "secret.csv", b"1,the first line of a private file\n")
    write(bucket, "e-1.csv", shard(1))
    (bucket / "e-2.csv").symlink_to(outside / "secret.csv")  # a link out of the bucket
    (bucket / "e-3.csv").symlink_to(bucket / "e-1.csv")  # a link inside it is a file like others
    (bucket / "more").symlink_to(outside)  # a folder link is not walked into

    report = engine.run_feeds([events_feed(str(bucket), pattern=r"(more/)?e-\d+\.csv")])

    assert report.ok
    assert set(loads(db)) == {"e-1.csv", "e-3.csv"}
    assert db.execute(
        "SELECT count(*) FROM sluice.units WHERE error LIKE '%private%'"
    ).fetchone() == (0,)
    assert count(db) == 100  # e-3 is the same rows again: upserted, unchanged


def test_reading_a_link_out_of_the_bucket_is_refused(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(tmp_path, "passwd", b"root:x:0:0\n")
    (bucket / "leak.csv").symlink_to(tmp_path / "passwd")
    store, _ = locate(str(bucket))

    with pytest.raises(Exception) as refused:
        b"".join(store.read("leak.csv"))

    assert "is a link to a file outside the bucket's folder" in str(refused.value)
    assert "root:x:0:0" not in str(refused.value)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("COMMIT; drop table victim", "'COMMIT;' is not one: use --write"),
        ("SET TRANSACTION READ WRITE; drop table victim", "'SET' is not one"),
        ("select 1; commit; drop table victim", "runs one query at a time"),
        ("drop table victim", "'drop' is not one"),
        (
            "with d as (delete from victim returning 1) select count(*) from d",
            "DECLARE CURSOR must not contain data-modifying statements in WITH",
        ),
        (
            "select set_config('transaction_read_only', 'off', false)",
            "read-write mode must be set before any query",
        ),
    ],
)
def test_sql_cannot_write(engine: Engine, db: Conn, query: str, fragment: str) -> None:
    db.execute("CREATE TABLE victim (a int)")
    db.execute("INSERT INTO victim VALUES (1)")

    with pytest.raises(ConfigError) as refused:
        engine.db.read_only_query(query)

    assert fragment in str(refused.value)
    assert 'DECLARE "sluice_sql"' not in str(refused.value)
    assert db.execute("SELECT count(*) FROM victim").fetchone() == (1,)


def test_sql_writes_only_when_asked(engine: Engine, db: Conn) -> None:
    statuses = engine.db.write_query("CREATE TABLE made (a int); INSERT INTO made VALUES (1), (2)")

    assert statuses == ["CREATE TABLE", "INSERT 0 2"]
    assert db.execute("SELECT count(*) FROM made").fetchone() == (2,)
