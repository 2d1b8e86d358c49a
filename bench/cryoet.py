"""The CryoET sync benchmark: generated portal trees of 1 dataset with N runs (each with a tilt
series, an alignment, 2 voxel spacings, 2 tomograms and 5 annotations with files).

For each run count (default 20 and 200) and each store (a local folder, and a bucket on each
S3-compatible server process started here: moto's server mode, and s3rver from npm when
``npm install`` has put it in ``node_modules``), it times imports with the real CLI — the first
one fetching one
document at a time (``--concurrency 1``, into a database of its own), the first one with the
default pool, a re-run over unchanged input, a re-run after 10 % of the runs changed, and a
``--full`` re-run reading everything again — and prints the store requests (listings, listing
pages, documents read) and the SQL statements each one issued, then the ratios to the targets.

The point to read: statements are the same for 20 runs and for 200 (one read per entity type and
at most one insert, update and delete), and listings are one per dataset prefix, their pages
growing with the objects listed, not with the directories. The original importer issued at least
one SELECT per row and one HEAD or listing per directory; the rows column gives that scale.

Before the syncs it probes every server it can start: GETs per second of one small document at
client concurrency 1, 4, 8 and 16, through sluice's own store client. A pool of concurrent reads
can only make the first import faster against a server that answers more requests at once;
moto's server does not (one Python process, a new connection and thread per request), s3rver
does a little (one Node.js process). Each row also gives the machine's load average when the
step started: on a shared machine, the seconds of a step are not its own alone.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import report
from bench.child import run_measured
from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.recipes.cryoet.generate import generate_tree
from sluice.store import S3Options, locate
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
    parser.add_argument(
        "--s3-server",
        nargs="+",
        choices=SERVERS,
        default=None,
        help="The S3-compatible server processes to sync from, one case each: moto (moto's "
        "server mode) and s3rver (npm, see package.json). Default: both when s3rver is "
        "installed, else moto.",
    )
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="Skip the probe of every installed S3 server's GETs per second by concurrency.",
    )
    args = parser.parse_args(argv)
    server = server_url("cryoet")
    if server is None:
        return 2
    results: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    kinds: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-bench-cryoet-") as scratch:
            for runs in args.runs:
                results += _case(server, args, Path(scratch), "folder", runs, None)
            if not args.no_s3:
                kinds = _server_kinds(args.s3_server)
                if not args.no_probe:
                    probes = _probe_servers(Path(scratch))
            for kind in kinds:
                s3 = _start(kind, Path(scratch) / f"s3-{kind}")
                try:
                    for runs in args.runs:
                        results += _case(server, args, Path(scratch), f"s3 {kind}", runs, s3)
                finally:
                    s3.stop()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    _print(results, args.runs, kinds, probes)
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
    if s3 is not None:
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
    if s3 is not None:
        command += ["--endpoint-url", s3.endpoint]
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
            # The machine may be shared: the load when the step starts says how far its
            # seconds are the import's own.
            load = os.getloadavg()[0]
            child = run_measured(
                [*command, "--concurrency", str(args.concurrency), *extra],
                env={**env, "SLUICE_DATABASE_URL": into.url},
                cwd=scratch,
                log=scratch / "cryoet.log",
            )
            if child.returncode != 0:
                raise BenchError(
                    f"sluice cryoet load ({where}, {runs} runs, {step}) exited with "
                    f"{child.returncode}:\n{child.stdout.decode(errors='replace')[-2000:]}\n"
                    f"{child.log_tail()}"
                )
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
                    "load": round(load, 2),
                }
            )
    finally:
        alone.drop()
        database.drop()
    return steps


def _print(
    results: list[dict[str, Any]], runs: list[int], kinds: list[str], probes: list[dict[str, Any]]
) -> None:
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
        "load",
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
            f"{r['load']:.2f}",
        ]
        for r in results
    ]
    if probes:
        _print_probes(probes)
    print(
        "\nCryoET sync: 1 dataset, N runs (tilt series, alignment, 2 voxel spacings, "
        "2 tomograms, 5 annotations with 2 files each)"
        + "".join(f"\n  store s3 {kind}: {SERVERS[kind]}" for kind in kinds)
        + "\n"
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
                f"  {line['store']:<9} {line['runs']:>5} runs  {line['name']:<24} "
                f"{line['ratio']:.3f} (target <= {line['target']}) {verdict}"
            )
    print(
        json.dumps(
            {
                "constant_statements": constant,
                "s3_servers": kinds,
                "ratios": ratios,
                "probes": probes,
                "results": results,
            }
        )
    )


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


#: The S3-compatible server processes the bench can start, by name.
SERVERS = {
    "s3rver": "s3rver (npm, Node.js; objects in a folder)",
    "moto": "moto's server mode (Python, in memory)",
}
#: Both servers accept these credentials (s3rver checks them; moto takes any).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: The probe: GETs of small documents, this many at each client concurrency.
PROBE_GETS = 300
PROBE_CONCURRENCY = (1, 4, 8, 16)
PROBE_DOCUMENT = json.dumps({"values": ["x" * 40] * 40}).encode()


def _s3rver() -> str | None:
    """The s3rver command installed by ``npm install`` (package.json), or one on the PATH."""
    local = ROOT / "node_modules" / ".bin" / "s3rver"
    if local.exists():
        return str(local)
    return shutil.which("s3rver")


def _server_kinds(asked: list[str] | None) -> list[str]:
    if asked is None:
        if _s3rver() is not None:
            return ["moto", "s3rver"]
        print(
            "bench: s3rver is not installed (npm install, see package.json); only moto's "
            "server, which answers GETs one at a time whatever the client's concurrency",
            file=sys.stderr,
        )
        return ["moto"]
    if "s3rver" in asked and _s3rver() is None:
        raise BenchError("s3rver is not installed: run npm install (see package.json)")
    return list(dict.fromkeys(asked))


def _start(kind: str, folder: Path) -> _S3Server:
    if kind == "s3rver":
        command = _s3rver()
        assert command is not None
        folder.mkdir(parents=True, exist_ok=True)
        return _S3Server(
            lambda port: [
                command,
                "--silent",
                "-d",
                str(folder),
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            # s3rver's listing continuation tokens use DES, which OpenSSL 3 keeps in its legacy
            # provider: without it a listing of more than one page fails.
            {"NODE_OPTIONS": "--openssl-legacy-provider"},
        )
    return _S3Server(
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    )


def _probe_servers(scratch: Path) -> list[dict[str, Any]]:
    """Every installed server's GETs per second at each client concurrency, through sluice's
    own store client: whether a pool of concurrent reads can be faster against it at all."""
    kinds = [k for k in SERVERS if k != "s3rver" or _s3rver() is not None]
    probes = []
    for kind in kinds:
        print(f"[{time.strftime('%H:%M:%S')}] probing {kind}", file=sys.stderr)
        s3 = _start(kind, scratch / f"probe-{kind}")
        try:
            probes.append({"server": kind, "per_second": _probe(s3)})
        finally:
            s3.stop()
    return probes


def _probe(s3: _S3Server) -> dict[str, float]:
    bucket = s3.bucket("probe")
    keys = [f"probe/{i:04d}.json" for i in range(PROBE_GETS)]
    store, _ = locate(f"s3://{bucket}", S3Options(endpoint_url=s3.endpoint))
    for key in keys:
        store.put(key, PROBE_DOCUMENT)

    def get(key: str) -> int:
        return len(b"".join(store.read(key)))

    get(keys[0])  # the connection and the client, set up once
    rates = {}
    for concurrency in PROBE_CONCURRENCY:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            read = sum(pool.map(get, keys))
        seconds = time.perf_counter() - started
        if read != len(PROBE_DOCUMENT) * len(keys):
            raise BenchError(f"the probe read {read} bytes, expected {len(PROBE_DOCUMENT)} each")
        rates[str(concurrency)] = round(len(keys) / seconds, 1)
    return rates


def _print_probes(probes: list[dict[str, Any]]) -> None:
    print(
        f"\nS3 server processes here: GETs per second of a {len(PROBE_DOCUMENT):,}-byte "
        f"document ({PROBE_GETS} GETs at each client concurrency, sluice's store client)\n"
    )
    header = ["server", *(f"c={c}" for c in PROBE_CONCURRENCY), f"c={PROBE_CONCURRENCY[-1]} / c=1"]
    rows = [
        [
            SERVERS[p["server"]],
            *(f"{p['per_second'][str(c)]:.0f}" for c in PROBE_CONCURRENCY),
            f"{p['per_second'][str(PROBE_CONCURRENCY[-1])] / p['per_second']['1']:.2f}×",
        ]
        for p in probes
    ]
    print(report.table(header, rows, right=list(range(1, len(header)))))


class _S3Server:
    """An S3-compatible server process for the benchmark's buckets, on a free local port."""

    def __init__(
        self, command: Callable[[int], list[str]], env: dict[str, str] | None = None
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = dict(CREDENTIALS)
        os.environ.update(self.env)
        self.proc = subprocess.Popen(
            command(port),
            env={**os.environ, **(env or {})},
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
