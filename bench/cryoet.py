"""The CryoET sync benchmark: generated portal trees of 1 dataset with N runs (each with a tilt
series, an alignment, 2 voxel spacings, 2 tomograms and 5 annotations with files).

For each run count (default 20 and 200) and each store (a local folder, and an S3-compatible
server process started here), it times imports with the real CLI — the first one fetching one
document at a time (``--concurrency 1``, into a database of its own), the first one with the
default pool, a re-run over unchanged input, a re-run after 10 % of the runs changed, and a
``--full`` re-run reading everything again — and prints the store requests (listings, listing
pages, documents read) and the SQL statements each one issued, then the ratios to the targets.

The point to read: statements are the same for 20 runs and for 200 (one read per entity type and
at most one insert, update and delete), and listings are one per dataset prefix, their pages
growing with the objects listed, not with the directories. The original importer issued at least
one SELECT per row and one HEAD or listing per directory; the rows column gives that scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.child import run_measured
from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.recipes.cryoet.generate import generate_tree
from sluice.store import S3Options
from sluice.sync.view import DEFAULT_CONCURRENCY

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "sluice_bench_cryoet"
DATASET = 90001
#: The steps, in order: (name, extra CLI arguments, whether it has a database of its own).
STEPS: tuple[tuple[str, list[str], bool], ...] = (
    ("first c=1", ["--concurrency", "1"], True),
    ("first", [], False),
    ("unchanged", [], False),
    ("changed", [], False),
    ("full", ["--full"], False),
)
#: Targets at 200 runs from the S3 server process: (name, step, of step, at most).
TARGETS = (
    ("unchanged_vs_first", "unchanged", "first", 0.1),
    ("changed_vs_first", "changed", "first", 0.25),
    ("first_vs_one_at_a_time", "first", "first c=1", 0.5),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cryoet", description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--change", type=float, default=0.1)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--no-s3", action="store_true", help="Only the local folder.")
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="Documents fetched at once."
    )
    args = parser.parse_args(argv)
    server = server_url("cryoet")
    if server is None:
        return 2
    stores = ["folder"] if args.no_s3 else ["folder", "s3"]
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-bench-cryoet-") as scratch:
            s3 = None if args.no_s3 else _S3Server()
            try:
                for where in stores:
                    for runs in args.runs:
                        results += _case(server, args, Path(scratch), where, runs, s3)
            finally:
                if s3 is not None:
                    s3.stop()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    _print(results, args.runs)
    return 0


def _case(
    server: str,
    args: argparse.Namespace,
    scratch: Path,
    where: str,
    runs: int,
    s3: _S3Server | None,
) -> list[dict[str, Any]]:
    print(f"[{time.strftime('%H:%M:%S')}] {where}: {runs} runs", file=sys.stderr)
    database = ScratchDatabase(server, args.database)
    database.create()
    env = {**os.environ, "SLUICE_DATABASE_URL": database.url}
    if where == "s3":
        assert s3 is not None
        bucket = s3.bucket(f"bench-{runs}")
        out, target = f"s3://{bucket}", bucket
        options = S3Options(endpoint_url=s3.endpoint)
        env.update(s3.env)
    else:
        folder = scratch / f"bucket-{runs}"
        shutil.rmtree(folder, ignore_errors=True)
        out = target = str(folder)
        options = S3Options()
    tree = generate_tree(out, runs=runs, dataset=DATASET, s3=options)
    command = [
        str(Path(sys.executable).with_name("sluice")),
        "cryoet",
        "load",
        target,
        "https://files.example",
        "--s3-prefix",
        str(DATASET),
        "--import-everything",
        "--json",
    ]
    if where == "s3":
        command += ["--endpoint-url", s3.endpoint if s3 else ""]
    steps = []
    alone = ScratchDatabase(server, args.database + "_c1")
    alone.create()
    try:
        for step, extra, own in STEPS:
            if step == "changed":
                generate_tree(
                    out, runs=runs, dataset=DATASET, change=args.change, generation=1, s3=options
                )
            into = alone if own else database
            into.checkpoint()
            child = run_measured(
                [*command, "--concurrency", str(args.concurrency), *extra],
                env={**env, "SLUICE_DATABASE_URL": into.url},
                cwd=scratch,
                log=scratch / "cryoet.log",
            )
            if child.returncode != 0:
                raise BenchError(f"sluice cryoet load failed:\n{child.log_tail()}")
            if own:
                alone.drop()
            result = json.loads(child.stdout)
            totals = result["totals"]
            steps.append(
                {
                    "store": where,
                    "runs": runs,
                    "step": step,
                    "objects": tree.objects,
                    "seconds": result["seconds"],
                    "wall_seconds": round(child.wall_seconds, 3),
                    "statements": result["statements"],
                    "requests": result["requests"],
                    "rows": sum(
                        c["created"] + c["updated"] + c["unchanged"] for c in totals.values()
                    ),
                    "created": sum(c["created"] for c in totals.values()),
                    "updated": sum(c["updated"] for c in totals.values()),
                    "deleted": sum(c["deleted"] for c in totals.values()),
                    "peak_rss_mb": round(child.peak_rss_mb, 1),
                }
            )
    finally:
        alone.drop()
        database.drop()
    return steps


def _print(results: list[dict[str, Any]], runs: list[int]) -> None:
    header = [
        "store",
        "runs",
        "step",
        "seconds",
        "wall s",
        "SQL stmts",
        "listings",
        "pages",
        "docs read",
        "rows",
        "created",
        "updated",
        "deleted",
    ]
    rows = [
        [
            r["store"],
            str(r["runs"]),
            r["step"],
            report.seconds(r["seconds"]),
            report.seconds(r["wall_seconds"]),
            str(r["statements"]),
            str(r["requests"]["lists"]),
            str(r["requests"]["pages"]),
            str(r["requests"]["gets"]),
            report.count(r["rows"]),
            report.count(r["created"]),
            report.count(r["updated"]),
            report.count(r["deleted"]),
        ]
        for r in results
    ]
    print(
        "\nCryoET sync: 1 dataset, N runs (tilt series, alignment, 2 voxel spacings, "
        "2 tomograms, 5 annotations with 2 files each)\n"
    )
    print(report.table(header, rows, right=list(range(3, len(header)))))
    by_step: dict[tuple[str, str], set[int]] = {}
    for r in results:
        by_step.setdefault((r["store"], r["step"]), set()).add(r["statements"])
    constant = all(len(counts) == 1 for counts in by_step.values())
    print(
        f"\nSQL statements the same for {' and '.join(map(str, runs))} runs: "
        f"{'yes' if constant else 'NO'}"
    )
    ratios = _ratios(results)
    if ratios:
        print("\nTargets (seconds of one step to another's, per store and run count):")
        for line in ratios:
            verdict = "ok" if line["ratio"] <= line["target"] else "MISSED"
            print(
                f"  {line['store']:<6} {line['runs']:>5} runs  {line['name']:<24} "
                f"{line['ratio']:.3f} (target <= {line['target']}) {verdict}"
            )
    print(json.dumps({"constant_statements": constant, "ratios": ratios, "results": results}))


def _ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seconds = {(r["store"], r["runs"], r["step"]): r["seconds"] for r in results}
    out = []
    for store, runs in dict.fromkeys((r["store"], r["runs"]) for r in results):
        for name, step, base, target in TARGETS:
            top, bottom = seconds.get((store, runs, step)), seconds.get((store, runs, base))
            if top is None or not bottom:
                continue
            out.append(
                {
                    "store": store,
                    "runs": runs,
                    "name": name,
                    "ratio": round(top / bottom, 3),
                    "target": target,
                }
            )
    return out


class _S3Server:
    """An S3-compatible server process (moto's server mode) for the benchmark's buckets."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        os.environ.update(self.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("the S3 server process did not start") from None
                time.sleep(0.1)

    def bucket(self, name: str) -> str:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
