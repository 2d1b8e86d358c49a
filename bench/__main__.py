"""``python -m bench NAME [OPTIONS]``: run one benchmark; without arguments, print the usage."""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = """\
usage: python -m bench NAME [OPTIONS]      (or: python3 tasks.py bench NAME [OPTIONS])

benchmarks:
  glam    GLAM desktop aggregate import of one generated file: raw COPY floor, keyed floors
          (logged COPY + the table's two keys, in one transaction and split over two
          sessions), the seed's method (scratch table + COPY + INSERT ... ON CONFLICT), sluice
          fresh, unchanged and changed re-imports, serving-view refresh and peak RSS.
          Options: --rows N (default 1000000), --change FRACTION (default 0.1), --keep,
          --database NAME (scratch database, default sluice_bench).

  cryoet  CryoET metadata sync of generated trees (20 and 200 runs), from a local folder and from
          an S3-compatible server process: first import, unchanged re-run, 10 % changed;
          store requests, SQL statements and times.
          Options: --runs N [N ...], --change FRACTION, --no-s3, --database NAME.

  hostile Objects built to exhaust memory, imported with 'sluice import': a ~4 GiB gzip bomb
          of one endless line, a ~1 GiB gzip bomb of short rows, 400 MB without a line break
          (the failing ones also as a new version of a loaded key, the staged way); peak RSS,
          wall time, ledger status and error of each. Options: --bomb-gib G, --rows-gib G,
          --flat-mb N, --no-staged, --keep, --database NAME.

  runtime 16 GLAM shards (1M rows) loaded with 1 and 2 workers, as threads of 'sluice run'
          and as Celery worker processes (Redis broker, SLUICE_BROKER_URL or 127.0.0.1:6379);
          and one scheduler tick over 1,000 and 10,000 objects already loaded: seconds and
          SQL statements. Options: --rows N, --shards N, --known N [N ...], --no-celery.

  service 'sluice serve' over a ledger of 100,000 loads and 1,000 runs: p50 / p99 latency of
          the dashboard page, /api/status, /api/loads?limit=100 and /metrics, and the time of
          each ledger query behind them. Options: --loads N, --runs N, --requests N, --keep,
          --database NAME.

  mozagg  One mozaggregator submission_date day (100 tables, 3,123,817 rows): the COPY TO
          STDOUT floor, the seed's pg_dump + parse, sluice direct and from the dump to Parquet,
          the Iceberg commit and DuckDB refresh; c/a, d/a, b/c and peak RSS.
          Options: --rows N, --tables N, --keep, --database NAME.

  cubic   Cubic routing: 10,000 small objects over 20 tables scanned and routed to Archive
          (seconds, store requests) and a re-scan that finds nothing new; the lake write of a
          1M-row change file (raw and typed) against pyarrow CSV → Parquet (the floor), with
          peak RSS; and the current view's benchmark when it is there. Options: --objects N,
          --tables N, --rows N, --no-current, --keep, --database NAME.

  current Cubic current view: a 1M-row change file (inserts, updates, deletes, before-images)
          applied to a view of 1M rows, and the LOAD file before it, each against a COPY of
          the same file into an unlogged table (the floor). Options: --rows N, --keep,
          --database NAME.

  fetchers The sources that fill Incoming: 'sluice cubic dmap fetch' of 20 datasets of 50 MB from
          a fake DMAP API process against a plain streaming copy (MB/s, peak RSS), and the
          stream batcher (Redis) against XRANGE of the same messages (messages/s).
          Options: --datasets N, --mb N, --messages N, --redis-url URL, --keep, --database NAME.

  ichnaea The Ichnaea submit API and fan-out (Redis, SLUICE_REDIS_URL or 127.0.0.1:6379): one
          XADD per request (the floor) against 'sluice ichnaea serve' under load (requests/s,
          p50 / p99 at saturation and at 500 requests/s), then fan-out to a dummy and a bucket
          export against a hand-written XREADGROUP + XADD + XACK loop (reports/s).
          Options: --seconds S, --connections N, --reports N, --redis-url URL, --database NAME.

  stations Ichnaea station updater: observations per second through apply_batch (1M wifi
          observations over 100,000 stations, 20 % new, batches of 500 reports) against a COPY
          of the same observations into an unlogged table; and the lag from the intake stream
          to station rows at 500 requests/s through the fan-out (Redis: SLUICE_REDIS_URL).
          Options: --observations N, --stations N, --new FRACTION, --per-report N, --batch N,
          --lag-seconds S (0: no lag step), --keep, --database NAME.

Needs SLUICE_DATABASE_URL (a PostgreSQL >= 15 server on which the role may create databases)
and the project's virtual environment. 'python -m bench NAME --help' shows a benchmark's options.
"""


def _glam(argv: list[str]) -> int:
    from bench import glam

    return glam.main(argv)


def _cryoet(argv: list[str]) -> int:
    from bench import cryoet

    return cryoet.main(argv)


def _hostile(argv: list[str]) -> int:
    from bench import hostile

    return hostile.main(argv)


def _runtime(argv: list[str]) -> int:
    from bench import runtime

    return runtime.main(argv)


def _service(argv: list[str]) -> int:
    from bench import service

    return service.main(argv)


def _mozagg(argv: list[str]) -> int:
    from bench import mozagg

    return mozagg.main(argv)


def _current(argv: list[str]) -> int:
    from bench import current

    return current.main(argv)


def _cubic(argv: list[str]) -> int:
    from bench import cubic

    return cubic.main(argv)


def _ichnaea(argv: list[str]) -> int:
    from bench import ichnaea

    return ichnaea.main(argv)


def _stations(argv: list[str]) -> int:
    from bench import stations

    return stations.main(argv)


def _fetchers(argv: list[str]) -> int:
    from bench import fetchers

    return fetchers.main(argv)


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "glam": _glam,
    "cryoet": _cryoet,
    "hostile": _hostile,
    "runtime": _runtime,
    "service": _service,
    "mozagg": _mozagg,
    "current": _current,
    "cubic": _cubic,
    "fetchers": _fetchers,
    "ichnaea": _ichnaea,
    "stations": _stations,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE, end="")
        return 0
    name, rest = argv[0], argv[1:]
    runner = BENCHMARKS.get(name)
    if runner is None:
        print(f"bench: unknown benchmark {name!r}\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 2
    try:
        return runner(rest)
    except KeyboardInterrupt:
        print(
            "bench: interrupted (scratch files and database removed unless --keep)", file=sys.stderr
        )
        return 130
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"sluice", "psycopg"}:
            print(
                f"bench: cannot import {exc.name}; run the benchmark with the project's virtual "
                "environment: python3 tasks.py bench " + " ".join(argv),
                file=sys.stderr,
            )
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
