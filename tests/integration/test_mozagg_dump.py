"""The dump path: archives written by the real pg_dump, read back through pg_restore's table of
contents and exact COPY-text unescaping, give the same rows as the direct path."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from sluice.api import Engine
from sluice.errors import BadInputError
from sluice.export.dump import read_toc, write_dump
from sluice.recipes.mozagg import api
from tests.integration.mozagg_source import SCHEMA, arrow_rows, expected, generate

pytestmark = pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
    reason="needs pg_dump and pg_restore (Debian's postgresql-client)",
)

DAY = date(2017, 2, 28)


@pytest.fixture(autouse=True)
def _pg_dump_reads_the_server(db: psycopg.Connection[Any]) -> None:
    """pg_dump refuses a server of a later major version than its own."""
    done = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True)
    found = re.search(r"(\d+)\.\d+", done.stdout)
    row = db.execute("SHOW server_version_num").fetchone()
    assert found is not None and row is not None
    if int(found.group(1)) < int(row[0]) // 10000:
        pytest.skip(f"pg_dump {found.group(0)} cannot dump a PostgreSQL {row[0]} server")


KIND = "submission_date"


def test_dump_path_equals_direct_path(
    engine: Engine, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    dumps = tmp_path / "dumps"
    generate(engine, DAY, 1, tables=3, rows=80, dump=dumps)
    archive = dumps / KIND / DAY.strftime("%Y%m%d")
    entries = read_toc(archive)
    assert len(entries) == 3 and {e.schema for e in entries} == {SCHEMA}
    # The archive holds each table's GIN index too: its entry follows the table's entry.
    assert (archive / "toc.dat").read_bytes().count(b"CREATE INDEX") == 3

    direct = api.export_day(engine, KIND, DAY, places=api.Places(out_dir=tmp_path / "a"))
    assert direct.ok, direct.as_dict()
    (record,) = api.partitions(engine, KIND)
    assert record.location is not None
    direct_table = pq.read_table(record.location)

    dumped = api.export_day(
        engine, KIND, DAY, places=api.Places(out_dir=tmp_path / "b"), dump=archive
    )
    assert dumped.ok, dumped.as_dict()
    assert [u.path for u in dumped.run.loads] == ["dump"]
    (record,) = api.partitions(engine, KIND)
    assert record.location is not None and "/b/" in record.location
    dump_table = pq.read_table(record.location)

    assert dump_table.schema == direct_table.schema
    assert arrow_rows(dump_table) == arrow_rows(direct_table) == expected(db, KIND, DAY)
    # Row for row, ingest date included, in the same order.
    assert dump_table.to_pylist() == direct_table.to_pylist()


def test_dump_rejects_bad_rows_like_the_direct_path(
    engine: Engine, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    generate(engine, DAY, 1, tables=1, rows=10)
    (table,) = [
        r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (SCHEMA,))
    ]
    db.execute(f"INSERT INTO {SCHEMA}.{table} VALUES ('[1, 2]', '{{1,2,3}}'), (NULL, '{{}}')")
    archive = tmp_path / "archive"
    write_dump(engine.db.url, SCHEMA, [table], archive)
    direct = api.export_day(engine, KIND, DAY, places=api.Places(out_dir=tmp_path / "a"))
    dumped = api.export_day(
        engine, KIND, DAY, places=api.Places(out_dir=tmp_path / "b"), dump=archive
    )
    assert direct.ok and dumped.ok
    files = sorted(tmp_path.glob("*/submission_date/*/rejects-*.csv"))
    assert len(files) == 2
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert texts[0] == texts[1]
    assert f'{table},11,"dimensions is a JSON array, not an object","[1, 2]"' in texts[0]
    assert f'{table},12,"histogram has 0 elements, fewer than 2",,{{}}' in texts[0]


def test_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a pg_dump directory archive"):
        read_toc(tmp_path)
