"""Hostile bytes: objects built to exhaust memory or to confuse a reader end as one clear error
on their own load (object, line, reason) while the other files of the run still load.

- a line past the load's ``max_line_bytes`` (a gzip bomb of one endless line, a file without
  line breaks), on the bulk, direct and staged paths, compressed or not;
- a gzip bomb of short lines: a valid file, loaded in bounded memory;
- malformed gzip: trailing garbage, a truncated header or member, a bad CRC, an empty object,
  plain text named ``.gz``; zero padding after the last member is accepted;
- byte order marks and invisible characters: a UTF-8 BOM at the start is removed, one
  elsewhere (or a control character) is shown escaped in the error;
- reasons of bad rows name the object, line and column, never a table of sluice's own.

The loads here refuse lines longer than `LIMIT` (1 MiB), so that small files can cross it.
"""

from __future__ import annotations

import csv
import gzip
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.api import Engine, open_engine
from sluice.config import Settings
from sluice.load.bulk import BulkLoader
from sluice.load.spec import Column, Feed, TableSpec
from sluice.runtime.report import LoadReport, RunReport
from tests.fixtures.fix_db import tuned

Db = psycopg.Connection[tuple[Any, ...]]

LIMIT = 1 << 20
TOO_LONG = (
    f"line longer than {LIMIT:,} bytes (the load's max_line_bytes): the object has no line "
    "break where one was due, or is not CSV; raise [load] max_line_mb if rows this long are real"
)

SPEC = TableSpec(
    name="scores",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("name", "text"),
        Column("score", "integer"),
    ),
    key=("id",),
    surrogate="row_id",
)
REJECTING = replace(SPEC, on_bad_rows="reject")
PATTERN = r"part-\d+\.csv(\.gz)?"


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The test's engine, with loads that refuse lines longer than `LIMIT`."""
    with open_engine(settings=tuned(settings, max_line_mb=LIMIT >> 20)) as opened:
        yield opened


@pytest.fixture
def ways(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The ways into the loader each object took (``direct`` covers the bulk build too)."""
    taken: dict[str, list[str]] = {}
    for way in ("direct", "staged"):
        original = getattr(BulkLoader, f"_{way}")

        def spy(self: BulkLoader, job: Any, *args: Any, _way: str = way, _f: Any = original) -> Any:
            taken.setdefault(job.claim.key, []).append(_way)
            return _f(self, job, *args)

        monkeypatch.setattr(BulkLoader, f"_{way}", spy)
    return taken


def feed(bucket: Path, spec: TableSpec = SPEC) -> Feed:
    return Feed(name="scores", table=spec, source=str(bucket), pattern=PATTERN)


def row(ident: int) -> bytes:
    return f'{ident},"name {ident}, {"x" * 60}",{ident % 997}\n'.encode()


def rows(first: int, count: int) -> bytes:
    return b"".join(row(first + i) for i in range(count))


def put(bucket: Path, key: str, data: bytes) -> None:
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / key).write_bytes(data)


def uri(bucket: Path, key: str) -> str:
    return (bucket / key).resolve().as_uri()


def by_key(report: RunReport) -> dict[str, LoadReport]:
    return {load.key: load for load in report.loads}


def ledger(db: Db, key: str) -> dict[str, Any]:
    """The newest ledger row of object `key`."""
    cur = db.execute(
        "SELECT status, error, error_detail, rows_in, rows_inserted, rows_rejected, rejects_key "
        "FROM sluice.loads WHERE key = %s ORDER BY id DESC LIMIT 1",
        [key],
    )
    names = [d.name for d in cur.description or ()]
    found = cur.fetchone()
    assert found is not None
    return dict(zip(names, found, strict=True))


def count(db: Db, low: int, high: int) -> int:
    found = db.execute("SELECT count(*) FROM scores WHERE id >= %s AND id < %s", [low, high])
    return int(found.fetchone()[0])  # type: ignore[index]


def assert_errored(
    db: Db, report: RunReport, bucket: Path, key: str, line: int | None, reason: str
) -> None:
    """`key` ended errored with exactly this line and reason, on the ledger and the report."""
    obj = uri(bucket, key)
    entry = ledger(db, key)
    where = f"{obj}, line {line}" if line is not None else obj
    assert (entry["status"], entry["error"]) == ("errored", f"{where}: {reason}")
    assert entry["error_detail"] == {"object": obj, "line": line, "column": None, "reason": reason}
    assert by_key(report)[key].error == entry["error"]


def assert_loaded(report: RunReport, db: Db, expected: dict[str, tuple[int, int]]) -> None:
    """Each key loaded, with exactly its rows (first id, count)."""
    loads = by_key(report)
    for key, (first, number) in expected.items():
        assert (loads[key].status, loads[key].counts.inserted) == ("loaded", number), key
        assert count(db, first, first + number) == number


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- lines past the limit ----------------------------------------------------------------------


def long_line() -> tuple[bytes, int]:
    """300 good rows, a valid row with a name longer than the limit on line 301, 5 more."""
    bad = b'300300,"%s",1\n' % (b"y" * (LIMIT + 10))
    return rows(300_000, 300) + bad + rows(300_301, 5), 301


def no_line_break() -> tuple[bytes, int]:
    """3 MiB without a single line break (a binary blob, or a bomb of one endless line)."""
    return b"300000," + b"z" * (3 << 20), 1


SHAPES: dict[str, Callable[[], tuple[bytes, int]]] = {
    "long_line": long_line,
    "no_line_break": no_line_break,
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("way", ["bulk", "direct", "staged"])
def test_a_line_past_the_limit_errors_its_object_on_every_path(
    way: str,
    shape: str,
    compressed: bool,
    engine: Engine,
    tmp_path: Path,
    db: Db,
    ways: dict[str, list[str]],
) -> None:
    bucket = tmp_path / "bucket"
    data, line = SHAPES[shape]()
    suffix = ".csv.gz" if compressed else ".csv"
    blob = gz(data) if compressed else data
    # bulk: the object is the first load of an empty table; direct: a new key of a loaded
    # table; staged: a new version of a key loaded before (its rows update existing ones).
    key = f"part-0{suffix}" if way == "bulk" else f"part-3{suffix}"
    good = {"part-1.csv": (100_000, 400), "part-2.csv": (200_000, 9000)}
    if way == "staged":
        put(bucket, key, gz(rows(300_000, 10)) if compressed else rows(300_000, 10))
        assert engine.run_feeds([feed(bucket)]).ok
        ways.clear()
    for name, (first, number) in good.items():
        put(bucket, name, rows(first, number))
    put(bucket, key, blob)

    report = engine.run_feeds([feed(bucket)])

    assert {k: load.status for k, load in by_key(report).items()} == {
        **dict.fromkeys(good, "loaded"),
        key: "errored",
    }
    assert_loaded(report, db, good)
    assert_errored(db, report, bucket, key, line, TOO_LONG)
    # a stream error is not a bad row: the object is not read a second time, chunk by chunk
    assert ways[key] == (["staged"] if way == "staged" else ["direct"])
    loaded_before = 10 if way == "staged" else 0
    assert count(db, 300_000, 400_000) == loaded_before


def test_a_gzip_bomb_of_short_lines_loads_in_bounded_memory(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    """64 MiB of identical rows from about 130 KB: a valid file, loaded in pieces (the store
    reads 64 KiB here, each of which used to expand to 32 MiB at once)."""
    events = TableSpec(
        name="events",
        columns=(Column("kind", "integer"), Column("payload", "text")),
        mode="append",
    )
    line = b"7," + b"p" * 1021 + b"\n"  # 1 KiB
    packer = zlib.compressobj(9, wbits=31)
    blob = b"".join(packer.compress(line * 1024) for _ in range(64)) + packer.flush()
    assert len(blob) < 150_000
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv.gz", blob)
    put(bucket, "part-2.csv", b"8,small\n")

    tracemalloc.start()
    try:
        report = engine.run_feeds(
            [Feed(name="events", table=events, source=str(bucket), pattern=PATTERN)]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    loads = by_key(report)
    assert [(k, loads[k].status, loads[k].counts.inserted) for k in sorted(loads)] == [
        ("part-1.csv.gz", "loaded", 65_536),
        ("part-2.csv", "loaded", 1),
    ]
    assert db.execute("SELECT count(*), sum(length(payload)) FROM events").fetchone() == (
        65_537,
        65_536 * 1021 + 5,
    )
    assert peak < 16 << 20  # Python's own allocations; the object expands to 64 MiB


# -- malformed gzip ------------------------------------------------------------------------


@dataclass(frozen=True)
class Gzip:
    """A malformed gzip object and the error it must end with (line None: after the data)."""

    blob: bytes
    line: int | None
    reason: str


BODY = rows(300_000, 200)
PACKED = gz(BODY)


def bad_crc() -> bytes:
    packed = bytearray(PACKED)
    packed[-8] ^= 0xFF
    return bytes(packed)


MALFORMED: dict[str, Callable[[], Gzip]] = {
    "trailing_garbage": lambda: Gzip(
        PACKED + b"\r\n-- appended by a careless tool --\r\n",
        None,
        f"trailing data after the end of the gzip stream at compressed byte {len(PACKED):,}: "
        "not a gzip member",
    ),
    "garbage_after_padding": lambda: Gzip(
        PACKED + b"\0" * 512 + b"junk",
        None,
        f"trailing data after the end of the gzip stream at compressed byte "
        f"{len(PACKED) + 512:,}: after the zero padding that follows it",
    ),
    "truncated_header": lambda: Gzip(
        PACKED[:5],
        1,
        "gzip stream is truncated: it ends after 5 compressed bytes, inside member 1 (before "
        "its end-of-stream marker)",
    ),
    "truncated_second_member": lambda: Gzip(
        PACKED + PACKED[:40],
        201,
        f"gzip stream is truncated: it ends after {len(PACKED) + 40:,} compressed bytes, "
        "inside member 2 (before its end-of-stream marker)",
    ),
    "bad_crc": lambda: Gzip(
        bad_crc(),
        1,
        f"corrupt gzip data in member 1, in compressed bytes 0 to {len(PACKED):,}: the CRC-32 "
        "recorded in the member does not match its data",
    ),
    "empty": lambda: Gzip(b"", 1, "the object is empty: 0 bytes are not a gzip stream"),
    "not_gzip": lambda: Gzip(
        BODY,
        1,
        "corrupt gzip data: the object does not start with a gzip header (not gzip at all?)",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_gzip_errors_its_object_and_the_rest_loads(
    case: str, engine: Engine, tmp_path: Path, db: Db
) -> None:
    bad = MALFORMED[case]()
    assert len(bad.blob) < 64 << 10  # one store read: nothing passes before the error
    bucket = tmp_path / "bucket"
    good = {"part-1.csv": (100_000, 50), "part-2.csv.gz": (200_000, 3000)}
    put(bucket, "part-1.csv", rows(100_000, 50))
    put(bucket, "part-2.csv.gz", gz(rows(200_000, 3000)))
    put(bucket, "part-3.csv.gz", bad.blob)

    report = engine.run_feeds([feed(bucket)])

    assert by_key(report)["part-3.csv.gz"].status == "errored"
    assert_loaded(report, db, good)
    assert_errored(db, report, bucket, "part-3.csv.gz", bad.line, bad.reason)
    assert count(db, 300_000, 400_000) == 0


def test_zero_padding_and_several_members_load(engine: Engine, tmp_path: Path, db: Db) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv.gz", gz(rows(100_000, 70)) + b"\0" * 4096)
    put(bucket, "part-2.csv.gz", gz(rows(200_000, 30)) + gz(rows(200_030, 40)) + b"\0")

    report = engine.run_feeds([feed(bucket)])

    assert_loaded(report, db, {"part-1.csv.gz": (100_000, 70), "part-2.csv.gz": (200_000, 70)})


# -- byte order marks and invisible characters -----------------------------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_byte_order_mark_at_the_start_is_removed(
    compressed: bool, engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    data = BOM + rows(100_000, 25)
    put(bucket, "part-1.csv.gz" if compressed else "part-1.csv", gz(data) if compressed else data)
    put(bucket, "part-2.csv", rows(200_000, 5))

    report = engine.run_feeds([feed(bucket)])

    key = "part-1.csv.gz" if compressed else "part-1.csv"
    assert_loaded(report, db, {key: (100_000, 25), "part-2.csv": (200_000, 5)})
    assert db.execute("SELECT name FROM scores WHERE id = 100000").fetchone() == (
        f"name 100000, {'x' * 60}",
    )


@pytest.mark.parametrize(
    ("fields", "column", "shown"),
    [
        (BOM + b"300004,a,1", "id", 'invalid input syntax for type bigint: "\\ufeff300004"'),
        (b"300004,a,\x01", "score", 'invalid input syntax for type integer: "\\x01"'),
        (b"300004,a,1\t2", "score", 'invalid input syntax for type integer: "1\\t2"'),
        (b'300004,a,"\xe2\x80\x8b7"', "score", 'invalid input syntax for type integer: "\\u200b7"'),
    ],
    ids=["bom_inside", "control", "tab", "zero_width_space"],
)
def test_invisible_characters_are_shown_escaped_in_the_error(
    fields: bytes, column: str, shown: str, engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 20))
    put(bucket, "part-3.csv", rows(300_000, 4) + fields + b"\n" + rows(300_005, 3))

    report = engine.run_feeds([feed(bucket)])

    obj = uri(bucket, "part-3.csv")
    entry = ledger(db, "part-3.csv")
    assert (entry["status"], entry["error"]) == (
        "errored",
        f"{obj}, line 5, column {column}: {shown}",
    )
    assert entry["error_detail"] == {"object": obj, "line": 5, "column": column, "reason": shown}
    assert entry["error"].isprintable()
    assert by_key(report)["part-3.csv"].error == entry["error"]
    assert_loaded(report, db, {"part-1.csv": (100_000, 20)})


def test_a_utf16_file_is_named_as_such(engine: Engine, tmp_path: Path, db: Db) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 20))
    put(bucket, "part-3.csv", "1,a,1\n2,b,2\n".encode("utf-16"))

    report = engine.run_feeds([feed(bucket)])

    assert_loaded(report, db, {"part-1.csv": (100_000, 20)})
    assert_errored(
        db,
        report,
        bucket,
        "part-3.csv",
        1,
        "the object starts with a UTF-16 byte order mark: it is UTF-16 text, and sluice loads "
        "UTF-8; convert it to UTF-8 first",
    )


# -- reasons of bad rows ---------------------------------------------------------------------

NOT_NULL = 'null value in column "id" violates not-null constraint'


def test_a_refused_row_is_explained_without_sluice_tables(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 20))
    put(bucket, "part-3.csv", rows(300_000, 2) + b',"no id",3\n' + rows(300_003, 5))

    report = engine.run_feeds([feed(bucket)])

    obj = uri(bucket, "part-3.csv")
    entry = ledger(db, "part-3.csv")
    assert (entry["status"], entry["error"]) == ("errored", f"{obj}, line 3, column id: {NOT_NULL}")
    assert entry["error_detail"] == {"object": obj, "line": 3, "column": "id", "reason": NOT_NULL}
    assert_loaded(report, db, {"part-1.csv": (100_000, 20)})


def test_rejected_rows_are_explained_without_sluice_tables(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    data = (
        rows(500_000, 2)
        + b',"no id",3\n'  # line 3
        + rows(500_003, 3)
        + b'500006,"score",many\n'  # line 7
        + rows(500_007, 3)
    )
    put(bucket, "part-1.csv", data)
    put(bucket, "part-2.csv", rows(100_000, 10))

    report = engine.run_feeds([feed(bucket, REJECTING)])

    loads = by_key(report)
    assert (loads["part-1.csv"].status, loads["part-1.csv"].counts.rejected) == ("loaded", 2)
    assert_loaded(report, db, {"part-2.csv": (100_000, 10)})
    assert count(db, 500_000, 600_000) == 8
    entry = ledger(db, "part-1.csv")
    assert (entry["rows_in"], entry["rows_inserted"], entry["rows_rejected"]) == (10, 8, 2)
    with (bucket / entry["rejects_key"]).open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [
            ["line", "column", "reason", "record"],
            ["3", "id", NOT_NULL, ',"no id",3'],
            ["7", "score", 'invalid input syntax for type integer: "many"', '500006,"score",many'],
        ]


def test_too_many_rejects_name_the_row_without_sluice_tables(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", b"".join(b',"no id %d",3\n' % n for n in range(4)))
    put(bucket, "part-2.csv", rows(100_000, 10))

    report = engine.run_feeds([feed(bucket, replace(REJECTING, max_rejects=2))])

    assert_loaded(report, db, {"part-2.csv": (100_000, 10)})
    obj = uri(bucket, "part-1.csv")
    reason = f"more than 2 bad rows (the table's max_rejects); this one: {NOT_NULL}"
    entry = ledger(db, "part-1.csv")
    assert (entry["status"], entry["error"]) == ("errored", f"{obj}, line 3, column id: {reason}")
