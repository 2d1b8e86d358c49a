"""The hostile-bytes benchmark: objects built to exhaust memory, imported by the real CLI.

Cases, each a ``sluice import FEED`` child process measured for wall time and peak RSS, in a
scratch database on the server of SLUICE_DATABASE_URL:

- **bomb, one line** — a ~4 GiB gzip bomb (about 4 MB compressed) of one endless line: must
  fail on the line limit after 64 MiB, not inflate;
- **bomb, short lines** — a gzip bomb of ~1 GiB of short identical rows (about 1 MB): a valid
  file, loaded in full in bounded memory;
- **no line break** — 400 MB of plain bytes without a single newline: must fail on the line
  limit.

The two failing cases run twice: into an empty table (the bulk way in) and as a new version of
a key loaded before (the staged way in, which cuts the stream into chunks). Files are written
streamed, a block at a time; nothing the size of a case is ever held in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import report
from bench.child import ChildResult, run_measured
from bench.scratch import BenchError, ScratchDatabase, server_url

DATA_ROOT = Path(__file__).resolve().parent / ".data"
DEFAULT_DATABASE = "sluice_bench_hostile"
RSS_TARGET_MB = 256.0
BLOCK = 1 << 20
#: One row of the short-lines bomb: 100 bytes.
SHORT_ROW = b"7," + b"p" * 97 + b"\n"

LINE_COLUMNS = '["n bigint not null", "pad text"]'
ROW_COLUMNS = '["n integer", "pad text"]'


@dataclass(frozen=True)
class Options:
    bomb_gib: float
    rows_gib: float
    flat_mb: int
    staged: bool
    keep: bool
    database: str


@dataclass(frozen=True)
class Case:
    """One import: the feed, its object, how the object is made, what must come of it."""

    label: str
    feed: str
    key: str
    make: Callable[[Path], None]
    #: "loaded" or "errored": the status the load must end with.
    expect: str
    #: Load a small good version of the key first, so that this one goes the staged way.
    staged: bool = False


@dataclass(frozen=True)
class Outcome:
    case: Case
    size: int
    child: ChildResult
    status: str
    error: str | None
    rows: int

    @property
    def met(self) -> bool:
        return self.status == self.case.expect and self.child.peak_rss_mb <= RSS_TARGET_MB


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench hostile",
        description="Import hostile objects (gzip bombs, a file without line breaks) with the "
        "sluice CLI; print peak RSS, wall time and the ledger's status and error of each.",
    )
    parser.add_argument(
        "--bomb-gib", type=float, default=4.0, help="expanded size of the one-line bomb (GiB)"
    )
    parser.add_argument(
        "--rows-gib", type=float, default=1.0, help="expanded size of the short-lines bomb (GiB)"
    )
    parser.add_argument(
        "--flat-mb", type=int, default=400, help="size of the file without line breaks (MB)"
    )
    parser.add_argument(
        "--no-staged", action="store_true", help="skip the staged runs of the failing cases"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files and the database")
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="scratch database created on the server (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if min(args.bomb_gib, args.rows_gib) <= 0 or args.flat_mb < 1:
        parser.error("sizes must be positive")
    return Options(
        bomb_gib=args.bomb_gib,
        rows_gib=args.rows_gib,
        flat_mb=args.flat_mb,
        staged=not args.no_staged,
        keep=args.keep,
        database=args.database,
    )


# -- the objects, written a block at a time ---------------------------------------------------


def write_gzip(path: Path, block: bytes, total: int) -> None:
    """`total` bytes of `block` repeated, gzip-compressed as tightly as it goes."""
    packer = zlib.compressobj(9, wbits=31)
    with path.open("wb") as out:
        for _ in range(total // len(block)):
            out.write(packer.compress(block))
        out.write(packer.compress(block[: total % len(block)]))
        out.write(packer.flush())


def one_line_bomb(gib: float) -> Callable[[Path], None]:
    return lambda path: write_gzip(path, b"x" * BLOCK, int(gib * (1 << 30)))


def short_lines_bomb(gib: float) -> Callable[[Path], None]:
    rows_per_block = BLOCK // len(SHORT_ROW)
    block = SHORT_ROW * rows_per_block
    total = int(gib * (1 << 30)) // len(block) * len(block)  # whole rows only
    return lambda path: write_gzip(path, block, total)


def no_line_break(mb: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        block = b"y" * BLOCK
        with path.open("wb") as out:
            for _ in range(mb * 1_000_000 // BLOCK):
                out.write(block)

    return make


def cases(options: Options) -> list[Case]:
    found = [
        Case(
            "bomb, one line (bulk)",
            "bomb_line",
            "bomb-line.csv.gz",
            one_line_bomb(options.bomb_gib),
            "errored",
        ),
        Case(
            "bomb, short lines",
            "bomb_rows",
            "bomb-rows.csv.gz",
            short_lines_bomb(options.rows_gib),
            "loaded",
        ),
        Case(
            "no line break (bulk)",
            "flat",
            "flat.csv",
            no_line_break(options.flat_mb),
            "errored",
        ),
    ]
    if options.staged:
        found += [
            Case(
                "bomb, one line (staged)",
                "bomb_line_staged",
                "bomb-line.csv.gz",
                one_line_bomb(options.bomb_gib),
                "errored",
                staged=True,
            ),
            Case(
                "no line break (staged)",
                "flat_staged",
                "flat.csv",
                no_line_break(options.flat_mb),
                "errored",
                staged=True,
            ),
        ]
    return found


def write_project(work: Path, all_cases: list[Case]) -> None:
    """A ``sluice.toml`` with one feed (and one source folder) per case."""
    lines: list[str] = []
    for case in all_cases:
        (work / case.feed).mkdir()
        rows = case.feed == "bomb_rows"
        lines += [
            f"[feeds.{case.feed}]",
            f'source = "{case.feed}"',
            r"pattern = '.*\.csv(\.gz)?'",
            f'table = "hostile_{case.feed}"',
            f"columns = {ROW_COLUMNS if rows else LINE_COLUMNS}",
            'mode = "append"' if rows else 'key = ["n"]',
            "",
        ]
    (work / "sluice.toml").write_text("\n".join(lines))


# -- entry point ------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    url = server_url("hostile")
    if url is None:
        return 2
    try:
        outcomes = run(options, url)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print_outcomes(outcomes)
    return 0 if all(o.met for o in outcomes) else 1


def run(options: Options, url: str) -> list[Outcome]:
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hostile-", dir=DATA_ROOT))
    db = ScratchDatabase(url, options.database)
    created = False
    try:
        note(f"scratch database {db.name}; files in {work}")
        db.create()
        created = True
        all_cases = cases(options)
        write_project(work, all_cases)
        env = {**os.environ, "SLUICE_DATABASE_URL": db.url}
        env.pop("SLUICE_PROJECT", None)
        made: dict[str, Path] = {}
        return [run_case(db, env, work, case, made) for case in all_cases]
    finally:
        db.close()
        if options.keep:
            note(f"kept {work} and database {db.name} (--keep)")
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                DATA_ROOT.rmdir()
            if created:
                try:
                    db.drop()
                except psycopg.Error as exc:
                    note(f"could not drop the scratch database {db.name}: {exc}")


def run_case(
    db: ScratchDatabase, env: dict[str, str], work: Path, case: Case, made: dict[str, Path]
) -> Outcome:
    """Import the case's object; `made` keeps each object made, for the case that repeats it."""
    path = work / case.feed / case.key
    if case.staged:
        note(f"{case.label}: loading a good version of {case.key} first")
        good = b"1,first version\n"
        path.write_bytes(zlib.compress(good, wbits=31) if case.key.endswith(".gz") else good)
        first = sluice_import(env, work, case, "first")
        if first.returncode != 0:
            raise BenchError(f"{case.label}: the good version did not load:\n{first.log_tail()}")
    kept = made.get(case.key)
    if kept is None:
        note(f"{case.label}: writing {case.key}")
        started = time.perf_counter()
        kept = made[case.key] = work / case.key
        case.make(kept)
        note(f"{case.label}: written in {time.perf_counter() - started:.1f} s")
    fresh = path.with_name(path.name + ".new")
    shutil.copyfile(kept, fresh)
    fresh.replace(path)  # a new object version of the key
    note(f"{case.label}: importing {path.stat().st_size:,} bytes")
    child = sluice_import(env, work, case, "import")
    status, error, rows = ledger_outcome(db, case)
    return Outcome(case, path.stat().st_size, child, status, error, rows)


def sluice_import(env: dict[str, str], work: Path, case: Case, step: str) -> ChildResult:
    return run_measured(
        [sys.executable, "-m", "sluice.cli", "import", case.feed, "--json"],
        env=env,
        cwd=work,
        log=work / f"{case.feed}-{step}.log",
    )


def ledger_outcome(db: ScratchDatabase, case: Case) -> tuple[str, str | None, int]:
    """The newest load of the case's object: status, error and rows inserted."""
    row = db.connection.execute(
        "SELECT l.status, l.error, coalesce(l.rows_inserted, 0) FROM sluice.loads l "
        "JOIN sluice.feeds f ON f.id = l.feed_id WHERE f.name = %s ORDER BY l.id DESC LIMIT 1",
        [case.feed],
    ).fetchone()
    if row is None:
        return "none", "no load on the ledger", 0
    return str(row[0]), row[1], int(row[2])


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- output -----------------------------------------------------------------------------------


def print_outcomes(outcomes: list[Outcome]) -> None:
    rows = [
        [
            o.case.label,
            f"{o.size / 1e6:,.1f} MB",
            f"{o.child.peak_rss_mb:.0f} MB",
            report.seconds(o.child.wall_seconds),
            o.status,
            report.count(o.rows),
            "met" if o.met else "NOT MET",
        ]
        for o in outcomes
    ]
    header = ["case", "object", "peak RSS", "wall s", "status", "rows", "target"]
    print(report.table(header, rows, right=[1, 2, 3, 5]))
    print(f"\ntarget: the expected status, and peak RSS ≤ {RSS_TARGET_MB:.0f} MB\n")
    for o in outcomes:
        print(f"{o.case.label}: {o.error or '(no error)'}")
    print()
    print(
        json.dumps(
            {
                o.case.label: {
                    "object_bytes": o.size,
                    "peak_rss_mb": round(o.child.peak_rss_mb, 1),
                    "wall_seconds": round(o.child.wall_seconds, 2),
                    "status": o.status,
                    "rows": o.rows,
                    "error": o.error,
                    "met": o.met,
                }
                for o in outcomes
            },
            ensure_ascii=False,
        )
    )
