"""The bad-input corpus: every kind of broken file ends as a clear error on the ledger (object,
line, column, reason) while the other files of the run still load; ``on_bad_rows = "reject"``
sets bad rows aside with their lines; errored loads can be retried.

Lines are physical lines of the object, counted from 1. The store hands the loader 1 MiB reads,
so `LATE` good rows (about 1.2 MB) put the bad line in a later chunk than the first one.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.api import Engine
from sluice.load.spec import Column, Feed, TableSpec
from sluice.recipes.glam.api import generate, import_aggregates
from sluice.runtime.report import LoadReport, RunReport

Db = psycopg.Connection[tuple[Any, ...]]

SPEC = TableSpec(
    name="scores",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("name", "text"),
        Column("score", "integer"),
    ),
    key=("id",),
    surrogate="row_id",  # "id" is a file column here
)
REJECTING = replace(SPEC, on_bad_rows="reject")
PATTERN = r"part-\d+\.csv(\.gz)?"

#: Good rows before a late bad line: more than one 1 MiB store read (chunks follow the reads).
LATE = 12_000
_PAD = "x" * 80


def feed(bucket: Path, spec: TableSpec = SPEC) -> Feed:
    return Feed(name="scores", table=spec, source=str(bucket), pattern=PATTERN)


def row(ident: int) -> bytes:
    """One good record of about 100 bytes; the quoted name holds a comma."""
    return f'{ident},"name {ident}, {_PAD}",{ident % 997}\n'.encode()


def rows(first: int, count: int) -> bytes:
    return b"".join(row(first + i) for i in range(count))


def planted(fields: bytes, *, before: int, after: int = 20, first: int = 300_000) -> bytes:
    """`before` good rows, a bad record of id first + before made of `fields` (on line
    before + 1), then `after` good rows; every id is distinct."""
    bad = b"%d,%s\n" % (first + before, fields)
    data = rows(first, before) + bad + rows(first + before + 1, after)
    if before >= LATE:
        assert len(rows(first, before)) > 1 << 20  # the bad line is past the first store read
    return data


def put(bucket: Path, key: str, data: bytes) -> None:
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / key).write_bytes(data)


def uri(bucket: Path, key: str) -> str:
    """The object's full URI, as messages name it."""
    return (bucket / key).resolve().as_uri()


def by_key(report: RunReport) -> dict[str, LoadReport]:
    return {load.key: load for load in report.loads}


def ledger(db: Db, key: str) -> list[dict[str, Any]]:
    """The ledger rows of object `key`, oldest first."""
    cur = db.execute(
        "SELECT id, status, attempts, error, error_detail, rows_in, rows_inserted, "
        "rows_updated, rows_unchanged, rows_rejected, rejects_key "
        "FROM sluice.loads WHERE key = %s ORDER BY id",
        [key],
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def ids_in(db: Db, low: int, high: int) -> list[int]:
    found = db.execute(
        "SELECT id FROM scores WHERE id >= %s AND id < %s ORDER BY id", [low, high]
    ).fetchall()
    return [int(r[0]) for r in found]


def located(obj: str, line: int, column: str | None, reason: str) -> str:
    """The message of a bad-input error: object, line, column, then the reason."""
    where = f"{obj}, line {line}" + (f", column {column}" if column else "")
    return f"{where}: {reason}"


class _AnyText:
    """Equal to any non-empty string (the server words the reason)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other.strip())

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<any non-empty text>"


ANY_TEXT: Any = _AnyText()


# -- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadFile:
    """One broken object and where its problem is."""

    key: str
    data: bytes
    line: int
    column: str | None
    #: Texts the reason must contain.
    mentions: tuple[str, ...]


def extra_column_late() -> BadFile:
    data = planted(b"one too many,3,4", before=LATE, after=100)
    return BadFile("part-3.csv", data, LATE + 1, None, ("extra data after last expected column",))


def missing_column() -> BadFile:
    data = planted(b"one too few", before=6, after=5)
    return BadFile("part-3.csv", data, 7, None, ('missing data for column "score"',))


def unterminated_quote_late() -> BadFile:
    data = planted(b'"never closed,5', before=LATE, after=20)
    return BadFile("part-3.csv", data, LATE + 1, None, ("unterminated CSV quoted field",))


def unterminated_quote_early() -> BadFile:
    data = planted(b'"never closed,5', before=3, after=8)
    return BadFile("part-3.csv", data, 4, None, ("unterminated CSV quoted field",))


def nul_byte_late() -> BadFile:
    data = planted(b"nul\x00inside,5", before=LATE + 345, after=50)
    return BadFile("part-3.csv", data, LATE + 346, None, ("0x00",))


def invalid_utf8() -> BadFile:
    data = planted(b"caf\xe9 latin-1,5", before=1, after=30)
    return BadFile("part-3.csv", data, 2, None, ('invalid byte sequence for encoding "UTF8"',))


def invalid_utf8_late() -> BadFile:
    data = planted(b"\xff\xfe,5", before=LATE + 7, after=3)
    return BadFile("part-3.csv", data, LATE + 8, None, ("0xff",))


def not_a_number() -> BadFile:
    data = planted(b"fine,lots", before=2, after=2)
    return BadFile("part-3.csv", data, 3, "score", ("integer", '"lots"'))


def not_a_number_late() -> BadFile:
    data = planted(b"fine,12x", before=LATE + 1, after=40)
    return BadFile("part-3.csv", data, LATE + 2, "score", ("integer", '"12x"'))


def truncated_gzip() -> BadFile:
    whole = gzip.compress(rows(300_000, 40_000), mtime=0)
    cut = whole[: len(whole) // 2]
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    assert len(readable) > 1 << 20  # the cut is past the first store read's worth of rows
    # The data stops inside this line: every line before it arrived whole.
    line = readable.count(b"\n") + 1
    return BadFile("part-3.csv.gz", cut, line, None, ("truncated",))


def empty_file() -> BadFile:
    return BadFile("part-3.csv", b"", 1, None, ("no rows",))


CORPUS: list[Callable[[], BadFile]] = [
    extra_column_late,
    missing_column,
    unterminated_quote_late,
    unterminated_quote_early,
    nul_byte_late,
    invalid_utf8,
    invalid_utf8_late,
    not_a_number,
    not_a_number_late,
    truncated_gzip,
    empty_file,
]

#: Good files of each corpus run and the ids they hold.
GOOD = {
    "part-1.csv": (100_000, 500),
    "part-2.csv": (200_000, LATE + 500),
    "part-4.csv": (400_000, 300),
}


def good_bucket(bucket: Path) -> None:
    for key, (first, count) in GOOD.items():
        put(bucket, key, rows(first, count))


@pytest.mark.parametrize("make", CORPUS, ids=[m.__name__ for m in CORPUS])
def test_bad_file_is_errored_and_the_rest_loads(
    make: Callable[[], BadFile], engine: Engine, tmp_path: Path, db: Db
) -> None:
    bad = make()
    bucket = tmp_path / "bucket"
    good_bucket(bucket)
    put(bucket, bad.key, bad.data)
    obj = uri(bucket, bad.key)

    report = engine.run_feeds([feed(bucket)])

    loads = by_key(report)
    assert {k: load.status for k, load in loads.items()} == {
        "part-1.csv": "loaded",
        "part-2.csv": "loaded",
        bad.key: "errored",
        "part-4.csv": "loaded",
    }
    assert not report.ok
    for key, (_, count) in GOOD.items():
        assert loads[key].counts.inserted == count
    assert report.counts.inserted == sum(count for _, count in GOOD.values())
    assert ids_in(db, 300_000, 400_000) == []  # nothing of the bad file
    for first, count in GOOD.values():
        assert len(ids_in(db, first, first + count)) == count

    [entry] = ledger(db, bad.key)
    detail = entry["error_detail"]
    assert entry["status"] == "errored"
    assert detail == {"object": obj, "line": bad.line, "column": bad.column, "reason": ANY_TEXT}
    for text in bad.mentions:
        assert text in detail["reason"]
    message = located(obj, bad.line, bad.column, detail["reason"])
    assert entry["error"] == message
    assert loads[bad.key].error == message
    assert loads[bad.key].load_id == entry["id"]


MULTILINE: dict[str, tuple[bytes, int]] = {
    "after_multiline_records": (
        b"1,plain,1\n"  # line 1
        b'2,"a name\nover two lines",2\n'  # lines 2-3
        b'3,"and one\nover\nthree",3\n'  # lines 4-6
        b"4,plain,4\n"  # line 7
        b"5,plain,five\n"  # line 8: the bad one
        b"6,plain,6\n",  # line 9
        8,
    ),
    "first_record_multiline": (
        b'1,"starts\nthe file",1\n'  # lines 1-2
        b"2,plain,2\n"  # line 3
        b'3,"x\ny",3\n'  # lines 4-5
        b"5,plain,five\n"  # line 6: the bad one
        b"6,plain,6\n",  # line 7
        6,
    ),
}


@pytest.mark.parametrize("case", sorted(MULTILINE))
def test_line_counts_newlines_inside_quoted_fields(
    case: str, engine: Engine, tmp_path: Path, db: Db
) -> None:
    """A quoted field may hold line breaks; the error still names the physical line."""
    data, line = MULTILINE[case]
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", data)

    report = engine.run_feeds([feed(bucket)])

    [load] = report.loads
    assert load.status == "errored"
    [entry] = ledger(db, "part-1.csv")
    assert entry["error_detail"] == {
        "object": uri(bucket, "part-1.csv"),
        "line": line,
        "column": "score",
        "reason": 'invalid input syntax for type integer: "five"',
    }
    assert load.error == entry["error"]


def test_glam_shard_with_a_bad_value_is_errored_alone(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=12_000, shards=2, out=str(bucket))
    bad_key = "aggs-desktop-nightly-000000000001.csv"
    lines = (bucket / bad_key).read_bytes().split(b"\n")
    fields = lines[4320].split(b",")  # line 4321, well past the first 1 MiB of the shard
    assert fields[8].isdigit()  # total_users
    fields[8] = b"many"
    lines[4320] = b",".join(fields)
    (bucket / bad_key).write_bytes(b"\n".join(lines))

    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert [(load.key, load.status) for load in report.loads] == [
        ("aggs-desktop-nightly-000000000000.csv", "loaded"),
        (bad_key, "errored"),
    ]
    assert report.counts.inserted == 6000
    assert db.execute("SELECT count(*) FROM glam_desktop_nightly_aggregation").fetchone() == (6000,)
    [entry] = ledger(db, bad_key)
    assert entry["error_detail"] == {
        "object": uri(bucket, bad_key),
        "line": 4321,
        "column": "total_users",
        "reason": 'invalid input syntax for type integer: "many"',
    }
    assert report.loads[1].error == entry["error"]


# -- sluice status ---------------------------------------------------------------------------


def test_status_lists_errored_loads_with_their_messages(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 50))
    put(bucket, "part-2.csv", planted(b"fine,oops", before=9, after=1))
    put(bucket, "part-3.csv.gz", gzip.compress(rows(300_000, 2000))[:-100])
    put(bucket, "part-4.csv", rows(400_000, 50))

    report = engine.run_feeds([feed(bucket)])
    status = engine.status()

    assert status.loads == {"scores": {"errored": 2, "loaded": 2}}
    errors = {entry.object: entry for entry in status.errors}
    assert set(errors) == {uri(bucket, "part-2.csv"), uri(bucket, "part-3.csv.gz")}
    for key in ("part-2.csv", "part-3.csv.gz"):
        entry = errors[uri(bucket, key)]
        [row_] = ledger(db, key)
        assert (entry.load_id, entry.feed, entry.status, entry.attempts) == (
            row_["id"],
            "scores",
            "errored",
            1,
        )
        assert entry.error == row_["error"] == by_key(report)[key].error
    assert errors[uri(bucket, "part-2.csv")].error == located(
        uri(bucket, "part-2.csv"), 10, "score", 'invalid input syntax for type integer: "oops"'
    )
    assert "truncated" in errors[uri(bucket, "part-3.csv.gz")].error
    [run] = status.runs
    assert (run.run_id, run.status, run.claimed, run.loaded, run.errored) == (
        report.run_id,
        "failed",
        4,
        2,
        2,
    )


# -- on_bad_rows = "reject" ------------------------------------------------------------------

REJECT_LINES = LATE + 1000


@dataclass(frozen=True)
class Rejected:
    """A bad record of the rescue test and what its rejects row must say."""

    line: int
    record: bytes
    column: str
    reason: str
    #: The record as the rejects object shows it.
    shown: str


def rejected(line: int, fields: bytes, column: str, reason: str, shown: str) -> Rejected:
    ident = 500_000 + line - 1
    return Rejected(line, b"%d,%s\n" % (ident, fields), column, reason, f"{ident},{shown}")


REJECTED = [
    rejected(5, b"too,many,fields", "", "extra data after last expected column", "too,many,fields"),
    rejected(40, b"too few", "", 'missing data for column "score"', "too few"),
    rejected(777, b"fine,NaN", "score", 'invalid input syntax for type integer: "NaN"', "fine,NaN"),
    rejected(LATE + 10, b"nul\x00here,1", "", "0x00", "nul\\x00here,1"),
    rejected(LATE + 600, b"bad \xff byte,2", "", "0xff", "bad \\xff byte,2"),
]


def rejecting_file() -> bytes:
    """`REJECT_LINES` lines; those listed in `REJECTED` are bad, every other one is good."""
    bad = {r.line: r.record for r in REJECTED}
    return b"".join(bad.get(n) or row(500_000 + n - 1) for n in range(1, REJECT_LINES + 1))


def test_reject_mode_loads_good_rows_and_sets_bad_ones_aside(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rejecting_file())
    put(bucket, "part-2.csv", rows(100_000, 10))
    good = REJECT_LINES - len(REJECTED)

    report = engine.run_feeds([feed(bucket, REJECTING)])

    loads = by_key(report)
    assert {k: load.status for k, load in loads.items()} == {
        "part-1.csv": "loaded",
        "part-2.csv": "loaded",
    }
    load = loads["part-1.csv"]
    assert (load.counts.rows_in, load.counts.inserted, load.counts.rejected) == (
        REJECT_LINES,
        good,
        len(REJECTED),
    )
    assert report.counts.rejected == len(REJECTED)
    [entry] = ledger(db, "part-1.csv")
    assert (entry["rows_in"], entry["rows_inserted"], entry["rows_rejected"]) == (
        REJECT_LINES,
        good,
        len(REJECTED),
    )
    assert entry["error"] is None
    bad_lines = {r.line for r in REJECTED}
    expected_ids = [500_000 + n - 1 for n in range(1, REJECT_LINES + 1) if n not in bad_lines]
    assert ids_in(db, 500_000, 600_000) == expected_ids

    rejects_key = f"part-1.csv.rejects-{entry['id']}.csv"
    assert entry["rejects_key"] == rejects_key
    assert load.rejects_key == rejects_key
    with (bucket / rejects_key).open(newline="", encoding="utf-8") as fh:
        written = list(csv.reader(fh))
    assert written[0] == ["line", "column", "reason", "record"]
    assert [(int(r[0]), r[1]) for r in written[1:]] == [(r.line, r.column) for r in REJECTED]
    for want, (_, _, reason, record) in zip(REJECTED, written[1:], strict=True):
        assert want.reason in reason, want
        assert record == want.shown, want
    # the rejects object is no source: a later run finds nothing new
    assert engine.run_feeds([feed(bucket, REJECTING)]).discovered == 0


def test_reject_mode_sets_aside_the_right_rows_among_multiline_records(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    """Records whose quoted fields hold line breaks do not shift which rows are set aside."""
    bucket = tmp_path / "bucket"
    data = (
        b"1,plain,1\n"  # line 1
        b'2,"a name\nover two lines",2\n'  # lines 2-3
        b"3,plain,three\n"  # line 4: bad
        b'4,"and one\nover\nthree",4\n'  # lines 5-7
        b"5,plain,5\n"  # line 8
        b"6,plain,6x\n"  # line 9: bad
        b"7,plain,7\n"  # line 10
    )
    put(bucket, "part-1.csv", data)

    report = engine.run_feeds([feed(bucket, REJECTING)])

    [load] = report.loads
    assert (load.status, load.error) == ("loaded", None), load.error
    counts = load.counts
    assert (counts.rows_in, counts.inserted, counts.rejected) == (7, 5, 2)
    assert ids_in(db, 0, 100) == [1, 2, 4, 5, 7]
    assert load.rejects_key is not None
    with (bucket / load.rejects_key).open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [
            ["line", "column", "reason", "record"],
            ["4", "score", 'invalid input syntax for type integer: "three"', "3,plain,three"],
            ["9", "score", 'invalid input syntax for type integer: "6x"', "6,plain,6x"],
        ]


def test_reject_mode_errors_a_file_with_more_bad_rows_than_max_rejects(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    bad_lines = {3, 10, 11, 250}
    data = b"".join(
        b"%d,bad,x\n" % (500_000 + n) if n in bad_lines else row(500_000 + n) for n in range(1, 401)
    )
    put(bucket, "part-1.csv", data)
    put(bucket, "part-2.csv", rows(100_000, 10))

    report = engine.run_feeds([feed(bucket, replace(REJECTING, max_rejects=3))])

    loads = by_key(report)
    assert (loads["part-1.csv"].status, loads["part-2.csv"].status) == ("errored", "loaded")
    [entry] = ledger(db, "part-1.csv")
    assert entry["error_detail"] == {
        "object": uri(bucket, "part-1.csv"),
        "line": 250,
        "column": "score",
        "reason": "more than 3 bad rows (the table's max_rejects); this one: "
        'invalid input syntax for type integer: "x"',
    }
    assert loads["part-1.csv"].error == entry["error"]
    assert ids_in(db, 500_000, 600_000) == []
    assert len(ids_in(db, 100_000, 200_000)) == 10


def test_max_rejects_counts_bad_rows_over_the_whole_file(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    """Bad rows spread over chunks staged side by side still add up to one budget."""
    bucket = tmp_path / "bucket"
    size = 2 * LATE  # about 2.6 MB: three 1 MiB chunks, staged two at a time
    # two bad rows in the first chunk, two in the second: four in all, one over the budget
    bad_lines = {10, 20, LATE + 10, LATE + 20}
    data = b"".join(
        b"%d,bad,x\n" % (500_000 + n) if n in bad_lines else row(500_000 + n)
        for n in range(1, size + 1)
    )
    put(bucket, "part-1.csv", data)

    report = engine.run_feeds([feed(bucket, replace(REJECTING, max_rejects=3))])

    [load] = report.loads
    assert (load.status, load.counts.rejected) == ("errored", 0), load
    [entry] = ledger(db, "part-1.csv")
    assert entry["status"] == "errored"
    assert "more than 3 bad rows" in entry["error"]
    assert ids_in(db, 500_000, 600_000) == []


# -- retrying --------------------------------------------------------------------------------


def test_fixed_file_is_loaded_as_a_new_version(engine: Engine, tmp_path: Path, db: Db) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 100))
    broken = planted(b"fine,abc", before=LATE, after=10)
    put(bucket, "part-2.csv", broken)
    bad_id = 300_000 + LATE
    first = engine.run_feeds([feed(bucket)])
    assert by_key(first)["part-2.csv"].status == "errored"

    put(bucket, "part-2.csv", broken.replace(b",fine,abc\n", b",fine,7\n"))
    second = engine.run_feeds([feed(bucket)])

    assert second.discovered == 1
    [load] = second.loads
    assert (load.key, load.status, load.error) == ("part-2.csv", "loaded", None)
    assert (load.counts.rows_in, load.counts.inserted) == (LATE + 11, LATE + 11)
    assert second.ok
    old, new = ledger(db, "part-2.csv")
    assert old["id"] == by_key(first)["part-2.csv"].load_id
    assert (new["id"], new["status"], new["rows_inserted"]) == (load.load_id, "loaded", LATE + 11)
    assert len(ids_in(db, 300_000, 400_000)) == LATE + 11
    assert db.execute("SELECT score FROM scores WHERE id = %s", [bad_id]).fetchone() == (7,)


def test_retry_after_fixing_supersedes_the_old_version(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    broken = planted(b"fine,abc", before=5, after=5)
    put(bucket, "part-1.csv", broken)
    [failed] = engine.run_feeds([feed(bucket)]).loads
    assert failed.status == "errored"

    put(bucket, "part-1.csv", broken.replace(b",abc\n", b",70\n"))
    assert engine.retry(load_ids=[failed.load_id]) == [failed.load_id]
    report = engine.run_feeds([feed(bucket)])

    assert report.ok
    assert [(load.status, load.counts.inserted) for load in report.loads] == [("loaded", 11)]
    old, new = ledger(db, "part-1.csv")
    assert (old["id"], old["status"]) == (failed.load_id, "superseded")
    assert (new["status"], new["rows_inserted"]) == ("loaded", 11)
    assert len(ids_in(db, 300_000, 400_000)) == 11


def test_retry_of_an_unchanged_object_errors_again_the_same_way(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 20))
    put(bucket, "part-2.csv", planted(b"\xc3\x28,5", before=LATE + 2, after=4))
    first = engine.run_feeds([feed(bucket)])
    failed = by_key(first)["part-2.csv"]
    assert failed.status == "errored"
    [before] = ledger(db, "part-2.csv")
    assert before["error_detail"]["line"] == LATE + 3

    assert engine.retry(load_ids=[failed.load_id]) == [failed.load_id]
    [waiting] = ledger(db, "part-2.csv")
    assert (waiting["status"], waiting["attempts"], waiting["error"]) == ("ready", 0, None)
    assert engine.status().loads == {"scores": {"loaded": 1, "ready": 1}}

    again = engine.run_feeds([feed(bucket)])

    assert again.discovered == 0
    [load] = again.loads
    assert (load.load_id, load.status, load.error) == (failed.load_id, "errored", failed.error)
    [after] = ledger(db, "part-2.csv")
    assert (after["status"], after["attempts"]) == ("errored", 1)
    assert (after["error"], after["error_detail"]) == (before["error"], before["error_detail"])
    assert ids_in(db, 300_000, 400_000) == []


# -- duplicate keys --------------------------------------------------------------------------


def test_duplicate_key_in_a_new_file_errors_it(engine: Engine, tmp_path: Path, db: Db) -> None:
    bucket = tmp_path / "bucket"
    put(bucket, "part-1.csv", rows(100_000, 30))
    put(bucket, "part-2.csv", rows(300_000, 600) + b"300123,again,1\n" + rows(300_600, 10))

    report = engine.run_feeds([feed(bucket)])

    loads = by_key(report)
    assert (loads["part-1.csv"].status, loads["part-2.csv"].status) == ("loaded", "errored")
    [entry] = ledger(db, "part-2.csv")
    assert entry["status"] == "errored"
    assert uri(bucket, "part-2.csv") in entry["error"]
    assert "(id=300123)" in entry["error"]
    assert "more than once" in entry["error"]
    assert loads["part-2.csv"].error == entry["error"]
    assert ids_in(db, 300_000, 400_000) == []
    assert len(ids_in(db, 100_000, 200_000)) == 30


def _reexport_with_duplicate(
    engine: Engine, bucket: Path, duplicate: bytes, db: Db
) -> tuple[RunReport, dict[str, Any]]:
    """Load part-1.csv, then re-export it with `duplicate` appended; return the second run."""
    original = rows(100_000, 200)
    put(bucket, "part-1.csv", original)
    assert engine.run_feeds([feed(bucket)]).counts.inserted == 200
    changed = original.replace(row(100_050), b"100050,changed,1\n")
    put(bucket, "part-1.csv", changed + duplicate)
    report = engine.run_feeds([feed(bucket)])
    return report, ledger(db, "part-1.csv")[-1]


def test_duplicate_of_an_existing_key_errors_the_reexport(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    report, entry = _reexport_with_duplicate(engine, bucket, b"100050,changed twice,2\n", db)

    [load] = report.loads
    assert (load.status, entry["status"]) == ("errored", "errored")
    assert "(id=100050)" in entry["error"] and uri(bucket, "part-1.csv") in entry["error"]
    assert load.error == entry["error"]
    assert db.execute("SELECT name FROM scores WHERE id = 100050").fetchone() == (
        f"name 100050, {_PAD}",
    )


def test_duplicate_of_an_existing_key_errors_even_if_one_copy_is_unchanged(
    engine: Engine, tmp_path: Path, db: Db
) -> None:
    bucket = tmp_path / "bucket"
    # id 100010 twice: once as stored, once with new values
    report, entry = _reexport_with_duplicate(engine, bucket, b"100010,new name,3\n", db)

    [load] = report.loads
    assert (load.status, entry["status"]) == ("errored", "errored"), load
    assert "(id=100010)" in entry["error"]
    assert db.execute("SELECT score FROM scores WHERE id = 100050").fetchone() == (100_050 % 997,)
