"""The whole Ichnaea flow through the real commands: ``sluice ichnaea serve`` takes reports
over HTTP, ``sluice ichnaea exports add`` configures a dummy, a geosubmit (an HTTP server
process) and a bucket (a folder) export, ``sluice ichnaea fanout`` delivers — exact reports
and bodies at each, ``status --json`` and ``/metrics`` count them. Then the same with the
fan-out SIGKILLed in the middle of a batch and started again: every report reaches each
export exactly once. And the runtime's own processes (``sluice run``, ``sluice worker``)
running the fan-out."""

from __future__ import annotations

import gzip
import json
import signal
import time
from pathlib import Path
from typing import Any

import redis

from tests.acceptance.conftest import Sluice
from tests.acceptance.test_ichnaea_submit import ok, post, serving
from tests.integration.test_fanout_exports import Target

SETTINGS = "[ichnaea]\nclaim_idle_seconds = 1\nretry_base_seconds = 0.05\nconfig_seconds = 0.5\n"


def reports(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": 1_700_000_000_000 + n,
            "position": {"latitude": 50 + n / 1000, "longitude": 7.0, "source": "gnss"},
            "wifiAccessPoints": [{"macAddress": f"01:23:45:67:{n // 256:02x}:{n % 256:02x}"}],
        }
        for n in range(start, start + count)
    ]


def bucket_reports(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.rglob("*.json.gz")):
        found += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return sorted(found, key=lambda r: r["timestamp"])


def add_exports(sluice: Sluice, env: dict[str, str], target: Target, folder: Path) -> None:
    # A batch of 7 does not divide the reports: the last few go when they are 0.5 s old.
    ok(
        sluice,
        "exports",
        "add",
        "count",
        "--kind",
        "dummy",
        "--batch",
        "7",
        "--max-age",
        "0.5",
        env=env,
    )
    ok(
        sluice,
        "exports",
        "add",
        "geo",
        "--kind",
        "geosubmit",
        "--url",
        target.url,
        "--batch",
        "10",
        env=env,
    )
    ok(
        sluice,
        "exports",
        "add",
        "files",
        "--kind",
        "bucket",
        "--batch",
        "25",
        "--url",
        f"{folder}/{{source}}/{{api_key}}",
        "--skip-sources",
        "query",
        env=env,
    )


def test_submit_fan_out_deliver_status_and_metrics(
    sluice: Sluice, redis_url: str, tmp_path: Path
) -> None:
    (sluice.cwd / "sluice.toml").write_text(SETTINGS)
    target = Target(tmp_path)
    folder = tmp_path / "bucket"
    try:
        with serving(sluice, redis_url) as served:
            env = {"SLUICE_REDIS_URL": redis_url, "SLUICE_ICHNAEA_REDIS_PREFIX": served.prefix}
            sent = reports(0, 30)
            for start in range(0, 30, 10):
                answer = post(served, "/v2/geosubmit", {"items": sent[start : start + 10]})
                assert answer.status_code == 200 and answer.json() == {}
            # No export config yet: the fan-out leaves the intake alone, and status says so.
            ok(sluice, "fanout", "--once", env=env)
            status = json.loads(ok(sluice, "status", "--json", env=env).stdout)
            assert status["depth"] == 30
            assert status["warning"] == (
                "no export config: the intake keeps its 30 reports until one is added "
                "(sluice ichnaea exports add)"
            )
            add_exports(sluice, env, target, folder)
            query = {
                "position": {"latitude": 1.0, "longitude": 2.0, "source": "query"},
                "cellTowers": [{"radioType": "lte", "cellId": 5}],
            }
            assert post(served, "/v2/geosubmit", {"items": [query]}).status_code == 200

            result = ok(sluice, "fanout", "--once", "--json", env=env)
            done = json.loads(result.stdout)
            assert (done["fanned_out"], done["copies"]) == (31, 92)

            assert target.delivered() == [*sent, query]
            assert [len(p["items"]) for p in target.posts()] == [10, 10, 10, 1]
            assert bucket_reports(folder) == sent
            assert sorted(p.relative_to(folder).parts[:2] for p in folder.rglob("*.gz")) == [
                ("gnss", "no_key"),
                ("gnss", "no_key"),
            ]

            status = json.loads(ok(sluice, "status", "--json", env=env).stdout)
            assert status["accepted"] == 31 and status["depth"] == 0
            assert status["warning"] is None
            counts = {
                e["name"]: (
                    e["queued"],
                    e["skipped"],
                    e["delivered"],
                    e["depth"],
                    e["dead_letters"],
                )
                for e in status["exports"]
            }
            assert counts == {
                "count": (31, 0, 31, 0, 0),
                "files": (30, 1, 30, 0, 0),
                "geo": (31, 0, 31, 0, 0),
            }
            scraped = served.client.get("/metrics").text
            for line in (
                'sluice_ichnaea_export_reports_total{export="geo",outcome="delivered"} 31.0',
                'sluice_ichnaea_export_reports_total{export="files",outcome="skipped"} 1.0',
                'sluice_ichnaea_intake_reports_total{outcome="accepted"} 31.0',
                'sluice_ichnaea_queue_depth{queue="intake"} 0.0',
            ):
                assert line in scraped
            listed = json.loads(ok(sluice, "exports", "list", "--json", env=env).stdout)
            assert [(e["name"], e["kind"], e["batch"]) for e in listed] == [
                ("count", "dummy", 7),
                ("files", "bucket", 25),
                ("geo", "geosubmit", 10),
            ]
    finally:
        target.stop()


def test_sigkill_mid_batch_then_restart_delivers_each_report_once(
    sluice: Sluice, redis_url: str, tmp_path: Path
) -> None:
    (sluice.cwd / "sluice.toml").write_text(SETTINGS)
    target = Target(tmp_path, "--delay", "0.4")
    folder = tmp_path / "bucket"
    try:
        with serving(sluice, redis_url) as served:
            env = {"SLUICE_REDIS_URL": redis_url, "SLUICE_ICHNAEA_REDIS_PREFIX": served.prefix}
            add_exports(sluice, env, target, folder)
            sent = reports(0, 100)
            for start in range(0, 100, 10):
                assert (
                    post(served, "/v2/geosubmit", {"items": sent[start : start + 10]}).status_code
                    == 200
                )
            log = (tmp_path / "fanout-1.log").open("w")
            proc = sluice.start("ichnaea", "fanout", env=env, stderr=log)
            deadline = time.monotonic() + 30
            while len(target.posts()) < 3:
                assert proc.poll() is None and time.monotonic() < deadline, "no POST came"
                time.sleep(0.02)
            time.sleep(0.2)  # the fourth POST is in flight now
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            with redis.Redis.from_url(redis_url) as client:
                in_hand = client.xpending(f"{served.prefix}:export:geo", "export")["pending"]
            assert in_hand == 10  # a batch was read and not acknowledged when it died

            result = ok(sluice, "fanout", "--until-idle", "2.5", "--json", env=env)
            assert json.loads(result.stdout)["handled"]["geo"] >= 60

            assert sorted(target.delivered(), key=lambda r: r["timestamp"]) == sent
            keys = [p["idempotency_key"] for p in target.posts() if p["status"] == 200]
            assert len(set(keys)) == 10
            for key in set(keys):  # a batch sent twice is the same batch both times
                copies = [p["items"] for p in target.posts() if p["idempotency_key"] == key]
                assert all(c == copies[0] for c in copies)
            assert bucket_reports(folder) == sent
            status = json.loads(ok(sluice, "status", "--json", env=env).stdout)
            assert {
                e["name"]: (e["delivered"], e["depth"], e["in_hand"]) for e in status["exports"]
            } == {"count": (100, 0, 0), "files": (100, 0, 0), "geo": (100, 0, 0)}
            assert status["depth"] == 0
    finally:
        target.stop()


def test_sluice_run_and_sluice_worker_run_the_fan_out(
    sluice: Sluice, redis_url: str, broker_env: dict[str, str]
) -> None:
    """With ``[ichnaea] enabled = true`` the runtime's own processes run the fan-out: ``sluice
    run --once`` delivers what is queued and exits; ``sluice worker`` delivers as reports come,
    until it is stopped."""
    (sluice.cwd / "sluice.toml").write_text(
        SETTINGS.replace("[ichnaea]\n", "[ichnaea]\nenabled = true\n")
    )
    with serving(sluice, redis_url) as served:
        env = {"SLUICE_REDIS_URL": redis_url, "SLUICE_ICHNAEA_REDIS_PREFIX": served.prefix}
        ok(sluice, "exports", "add", "count", "--kind", "dummy", "--max-age", "0", env=env)
        assert post(served, "/v2/geosubmit", {"items": reports(0, 5)}).status_code == 200
        sluice.ok("run", "--once", env=env)
        delivered = json.loads(ok(sluice, "status", "--json", env=env).stdout)["exports"]
        assert delivered[0]["delivered"] == 5
        overall = json.loads(sluice.ok("status", "--json", env=env).stdout)["consumers"]
        assert overall["ichnaea-fanout"]["accepted"] == 5
        assert overall["ichnaea-fanout"]["export count"] == (
            "dummy: depth 0, delivered 5, retried 0, dead-lettered 0, dead letters 0"
        )
        assert "export count" in sluice.ok("status", env=env).stdout

        worker = sluice.start("worker", env={**env, **broker_env})
        try:
            assert post(served, "/v2/geosubmit", {"items": reports(5, 3)}).status_code == 200
            deadline = time.monotonic() + 30
            while True:
                status = json.loads(ok(sluice, "status", "--json", env=env).stdout)
                if status["exports"][0]["delivered"] == 8:
                    break
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                assert time.monotonic() < deadline, status
                time.sleep(0.3)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=60)
        assert status["exports"][0]["depth"] == 0
