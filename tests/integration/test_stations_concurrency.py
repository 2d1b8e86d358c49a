"""Station updaters as separate processes: overlapping batches from two workers at once end with
no deadlock and exactly the rows of one sequential run in the order they committed; a worker
SIGKILLed inside a batch leaves nothing, and the batch delivered again counts once. Batches
prepared ahead write exactly what batches applied one by one write."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.db import Database, DatabaseOptions
from sluice.stations import apply_batch, stats
from sluice.stations.ahead import apply_batches
from sluice.stations.regions import region_of
from tests.fixtures.faults import kill_at_fault
from tests.fixtures.fix_db import fresh_database

TODAY = date(2026, 4, 1)  # a past day: rows are stamped at its midnight, in every process
ROOT = Path(__file__).resolve().parents[2]

#: Every table apply_batch writes, with its key, for comparing two databases.
TABLES = (
    [(f"wifi_shard_{d:x}", "mac") for d in range(16)]
    + [(f"blue_shard_{d:x}", "mac") for d in range(16)]
    + [(f"cell_{r}", "cellid") for r in ("gsm", "wcdma", "lte")]
    + [("cell_area", "areaid"), ("stat_daily", "key, time")]
    + [(f"datamap_{q}", "grid") for q in ("ne", "nw", "se", "sw")]
)


def batches(
    worker: int, n: int, stations: int = 60, far_rate: float = 0.05, query_rate: float = 0.33
) -> list[tuple[str, list[dict[str, Any]]]]:
    """`n` batches over the same `stations` (every shard), some reports far off (blocks)."""
    rng = random.Random(worker)
    out = []
    for b in range(n):
        reports = []
        for _ in range(30):
            s = rng.randrange(stations)
            far = rng.random() < far_rate
            lat = 47.0 + s * 0.01 + rng.uniform(-0.0003, 0.0003) + (0.5 if far else 0.0)
            lon = 5.0 + s * 0.01 + rng.uniform(-0.0003, 0.0003)
            mac = f"0a{s % 16:x}0{s:08x}"[:12]
            reports.append(
                {
                    "position": {
                        "latitude": lat,
                        "longitude": lon,
                        "accuracy": rng.choice([5.0, 20.0]),
                        "source": "query" if rng.random() < query_rate else "gnss",
                    },
                    "wifiAccessPoints": [
                        {"macAddress": mac, "signalStrength": rng.randint(-90, -50)}
                    ],
                    "bluetoothBeacons": [{"macAddress": mac[::-1]}],
                    "cellTowers": [
                        {
                            "radioType": rng.choice(["gsm", "lte"]),
                            "mobileCountryCode": 262,
                            "mobileNetworkCode": 1,
                            "locationAreaCode": 1 + s % 3,
                            "cellId": 1 + s,
                            "primaryScramblingCode": rng.randint(0, 9),
                        }
                    ],
                }
            )
        out.append((f"w{worker}-b{b}", reports))
    return out


def worker_main(url: str, path: str, go: str = "") -> None:
    """Entry of a worker process: apply every batch of the JSON file at `path` (once the file
    `go` exists, when one is named: workers started one after the other then begin at once)."""
    with Database.open(DatabaseOptions(url=url, pool_size=2), upgrade=False) as database:
        plan = json.loads(Path(path).read_text())
        region_of(44.0, 5.0)  # the region data loaded (a second or two) before the start
        if go:
            print("ready", flush=True)
            deadline = time.monotonic() + 60
            while not Path(go).exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        # As the internal exporter does: each batch prepared while the one before is written.
        for _ in apply_batches(database, [(b, r) for b, r in plan], today=TODAY):
            pass
    print("done", flush=True)


def spawn(
    url: str, path: Path, env: dict[str, str] | None = None, go: Path | None = None
) -> subprocess.Popen[str]:
    code = (
        "import sys; from tests.integration.test_stations_concurrency import worker_main; "
        "worker_main(*sys.argv[1:])"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(path), *([str(go)] if go else [])],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(
                f"SELECT * FROM ichnaea.{t} ORDER BY {key}"
            ).fetchall()  # test-only names
            for t, key in TABLES
        }


def test_two_workers_on_overlapping_batches_no_deadlock_no_lost_update(
    database_url: str, server_url: str, template_db: str, tmp_path: Path
) -> None:
    plans = {w: batches(w, 12) for w in (1, 2)}
    files = {}
    for w, plan in plans.items():
        files[w] = tmp_path / f"w{w}.json"
        files[w].write_text(json.dumps(plan))
    go = tmp_path / "go"
    procs = [spawn(database_url, files[w], go=go) for w in plans]
    for p in procs:  # both connected and loaded: then both start at once
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    with psycopg.connect(database_url) as conn:
        order = [
            r[0] for r in conn.execute("SELECT batch_id FROM ichnaea.station_batches ORDER BY seq")
        ]
        deadlocks = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert sorted(order) == sorted(b for plan in plans.values() for b, _ in plan)
    assert deadlocks == (0,)
    # Both workers ran at once: their batches interleave in the commit order.
    assert {b.split("-")[0] for b in order[:12]} == {"w1", "w2"}

    by_id = {b: reports for plan in plans.values() for b, reports in plan}
    with fresh_database(server_url, "sluice_seq", template_db) as sequential:
        with Database.open(DatabaseOptions(url=sequential), upgrade=False) as database:
            for batch_id in order:
                apply_batch(database, batch_id, by_id[batch_id], today=TODAY)
        expected = snapshot(sequential)
    got = snapshot(database_url)
    assert got == expected
    assert sum(len(got[f"wifi_shard_{d:x}"]) for d in range(16)) == 60
    assert len(got["cell_area"]) >= 1


def test_a_worker_killed_inside_a_batch_counts_it_once_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    plan = batches(3, 1, far_rate=0.0, query_rate=0.0)  # all new: samples count exactly
    path = tmp_path / "one.json"
    path.write_text(json.dumps(plan))
    proc = spawn(database_url, path, {"SLUICE_FAULT_PAUSE": "stations"})
    kill_at_fault(proc, "stations")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ichnaea.station_batches").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM ichnaea.cell_lte").fetchone() == (0,)

    batch_id, reports = plan[0]
    with Database.open(DatabaseOptions(url=database_url), upgrade=False) as database:
        first = apply_batch(database, batch_id, reports, today=TODAY)
        again = apply_batch(database, batch_id, reports, today=TODAY)
        counted = {r["name"]: r["value"] for r in stats(database)}
    assert first.applied and not again.applied
    assert first.observations == 90
    assert counted["wifi"] + counted["blue"] + counted["cell"] == 90
    with psycopg.connect(database_url) as conn:
        samples = conn.execute(
            "SELECT coalesce(sum(samples), 0)::int FROM ("
            + " UNION ALL ".join(f"SELECT samples FROM ichnaea.wifi_shard_{d:x}" for d in range(16))
            + ") s"
        ).fetchone()
    assert first.effects.get("wifi.new_block", 0) == 0
    assert samples == (30,) and counted["wifi"] == 30


def test_batches_prepared_ahead_write_what_batches_one_by_one_write(
    server_url: str, template_db: str
) -> None:
    plan = batches(4, 6) + batches(4, 2)[:1]  # the last one again: already applied
    with fresh_database(server_url, "sluice_ahead", template_db) as ahead:
        with Database.open(DatabaseOptions(url=ahead), upgrade=False) as database:
            results = list(apply_batches(database, plan, today=TODAY))
        got = snapshot(ahead)
    with fresh_database(server_url, "sluice_one_by_one", template_db) as one_by_one:
        with Database.open(DatabaseOptions(url=one_by_one), upgrade=False) as database:
            expected_results = [apply_batch(database, b, r, today=TODAY) for b, r in plan]
        expected = snapshot(one_by_one)
    assert [r.applied for r in results] == [True] * 6 + [False]
    assert results == expected_results
    assert got == expected
    # 180 reports of the 60 stations (seeded): 57 of them seen
    assert sum(len(got[f"wifi_shard_{d:x}"]) for d in range(16)) == 57


@pytest.fixture(autouse=True)
def _no_fault_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICE_FAULT_PAUSE", raising=False)
