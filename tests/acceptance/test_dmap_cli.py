"""``sluice cubic dmap`` as a user runs it, against the fake DMAP API process: feeds added and
listed, a fetch by hand, the fetch on ``sluice run``'s schedule, and no key in any output."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import psycopg

from tests.acceptance.conftest import Sluice, json_report
from tests.integration.dmap_fake import CONTROLLED, PUBLIC, running

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "cubic-dmap"
FEED = "/datasetcontrolleduserapi/datasets/agg_sample"


def dataset(day: str, last_updated: str) -> dict[str, str]:
    iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    return {
        "id": "agg_sample",
        "dataset_id": f"agg_sample_{day}",
        "start_date": iso,
        "end_date": iso,
        "last_updated": last_updated,
        "file": str(SAMPLES / f"agg_sample_{day}.csv.gz"),
    }


def test_feeds_add_list_and_fetch_by_hand_then_on_the_schedule_of_sluice_run(
    sluice: Sluice, tmp_path: Path, database_url: str
) -> None:
    incoming = tmp_path / "incoming"
    with running(tmp_path) as api:
        env = {
            "SLUICE_CUBIC_DMAP_BASE_URL": api.url,
            "SLUICE_CUBIC_DMAP_CONTROLLED_KEY": CONTROLLED,
            "SLUICE_CUBIC_DMAP_PUBLIC_KEY": PUBLIC,
            "SLUICE_CUBIC_INCOMING": str(incoming),
        }
        api.scenario(datasets=[dataset("20220517", "2022-05-22T20:49:50.123456")])
        assert sluice.ok("cubic", "dmap", "feeds", "add", FEED, env=env).stdout.strip() == (
            f"added feed {FEED}"
        )
        again = sluice.run("cubic", "dmap", "feeds", "add", FEED, env=env)
        assert again.returncode == 2, again.stderr
        assert f"feed '{FEED}' exists already" in again.stderr
        bad = sluice.run("cubic", "dmap", "feeds", "add", "/elsewhere/x", env=env)
        assert bad.returncode == 2 and "no key applies" in bad.stderr

        fetched = sluice.ok("cubic", "dmap", "fetch", "--json", env=env)
        report = json_report(fetched)
        assert report["ok"] is True
        assert report["feeds"][0]["uploaded"] == ["agg_sample_20220517"]
        key = incoming / "cubic" / "dmap" / "agg_sample" / "agg_sample_20220517.csv.gz"
        assert gzip.decompress(key.read_bytes()).decode().splitlines()[0] == (
            "sample_id,sample_name,sample_count"
        )

        listed = json.loads(sluice.ok("cubic", "dmap", "feeds", "list", "--json", env=env).stdout)
        assert [(f["relative_url"], f["last_updated_at"], f["datasets"]) for f in listed] == [
            (FEED, "2022-05-22T20:49:50.123456", 1)
        ]

        # The next day's dataset, fetched by `sluice run --once` through the scheduled feed.
        api.scenario(
            datasets=[
                dataset("20220517", "2022-05-22T20:49:50.123456"),
                dataset("20220518", "2022-05-23T20:49:50.000000"),
            ]
        )
        run = sluice.ok("run", "--once", "--json", env=env)
        assert (incoming / "cubic" / "dmap" / "agg_sample" / "agg_sample_20220518.csv.gz").exists()

        outputs = [fetched, run, sluice.ok("cubic", "dmap", "datasets", "--json", env=env)]
    assert all(CONTROLLED not in r.stdout + r.stderr for r in outputs)
    queries = [r["query"] for r in api.listings()]
    assert queries == ["", "last_updated=2022-05-22T20%3A49%3A50.123457"]
    with psycopg.connect(database_url) as conn:
        feed = conn.execute(
            "SELECT name, kind, schedule, scan_error FROM sluice.feeds WHERE kind = 'fetch'"
        ).fetchall()
        rows = conn.execute(
            "SELECT dataset_id FROM sluice.dmap_datasets ORDER BY dataset_id"
        ).fetchall()
    assert feed == [("cubic-dmap", "fetch", "0 15 * * *", None)]
    assert rows == [("agg_sample_20220517",), ("agg_sample_20220518",)]
