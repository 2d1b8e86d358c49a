"""Geosubmit documents through the intake (its v2 parsing and its Redis Stream) and the fan-out
to an ``internal`` export: station rows, cell areas, the datamap and the counters; the fan-out
run again delivers nothing twice."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from sluice.api import Engine
from sluice.errors import ConfigError, TerminalError
from sluice.fanout import exporters
from sluice.fanout.configs import ExportConfig
from sluice.intake.queue import IntakeQueue, QueueOptions, connect
from sluice.recipes.ichnaea import fanout as api
from sluice.recipes.ichnaea.options import IchnaeaOptions
from sluice.recipes.ichnaea.reports import parse_v2
from sluice.stations import show_station, stats
from tests.fixtures.fix_redis import ichnaea_options


@pytest.fixture
def options(redis_url: str) -> Iterator[IchnaeaOptions]:
    with ichnaea_options(redis_url, "sluice-test-stations") as chosen:
        yield chosen


def geosubmit(document: dict[str, Any], options: IchnaeaOptions) -> None:
    submission = parse_v2(document)
    queue_options = QueueOptions(redis_url=options.redis_url, prefix=options.redis_prefix)

    async def put() -> None:
        client = connect(queue_options)
        try:
            await IntakeQueue(client, queue_options).put(submission.reports, None, {})
        finally:
            await client.aclose()

    asyncio.run(put())


def item(lat: float, mac: str, cid: int) -> dict[str, Any]:
    return {
        "timestamp": 1_770_000_000_000,
        "position": {"latitude": lat, "longitude": 13.4, "accuracy": 10, "age": 500},
        "wifiAccessPoints": [{"macAddress": mac, "signalStrength": -70, "age": 600}],
        "cellTowers": [
            {
                "radioType": "umts",
                "mobileCountryCode": 262,
                "mobileNetworkCode": 2,
                "locationAreaCode": 77,
                "cellId": cid,
                "primaryScramblingCode": 12,
            }
        ],
    }


def test_geosubmit_to_station_rows(
    engine: Engine, options: IchnaeaOptions, database_url: str
) -> None:
    api.add_export(engine.db, ExportConfig("stations", "internal", batch=3))
    geosubmit(
        {"items": [item(52.52, "01:02:03:04:05:06", 1), item(52.5201, "01:02:03:04:05:06", 2)]},
        options,
    )
    geosubmit({"items": [item(52.5202, "01:02:03:04:05:06", 1), {"position": {}}]}, options)
    result = api.run_fanout(engine.db, options, threading.Event(), once=True)
    assert result.fanned_out == 3

    wifi = show_station(engine.db, "wifi", "010203040506")
    assert wifi is not None and wifi.samples == 3 and wifi.lat == pytest.approx(52.5201)
    cell = show_station(engine.db, "cell", "wcdma:262:2:77:1")
    assert cell is not None and cell.samples == 2 and cell.psc == 12
    today = datetime.now(UTC).date().isoformat()
    assert [(r["name"], r["time"], r["value"]) for r in stats(engine.db)] == [
        ("cell", today, 3),
        ("unique_cell", today, 2),
        ("wifi", today, 3),
        ("unique_wifi", today, 1),
    ]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT num_cells FROM ichnaea.cell_area").fetchall() == [(2,)]
        assert conn.execute("SELECT count(*) FROM ichnaea.datamap_ne").fetchone() == (1,)
        batches = conn.execute("SELECT reports FROM ichnaea.station_batches").fetchall()
    assert sum(r[0] for r in batches) == 3

    again = api.run_fanout(engine.db, options, threading.Event(), once=True)
    assert again.fanned_out == 0
    assert show_station(engine.db, "wifi", "010203040506") == wifi


def test_a_report_that_is_not_json_refuses_the_batch(database_url: str) -> None:
    exporter = exporters.make(
        ExportConfig("stations", "internal", url=database_url), exporters.ExportContext()
    )
    try:
        bad = exporters.Batch("stations", "5-0", [exporters.Item("5-0", None, "gnss", b"{no")])
        with pytest.raises(
            TerminalError, match="export stations, entry 5-0: the report is not JSON"
        ):
            exporter.send(bad)
        listed = exporters.Batch("stations", "6-0", [exporters.Item("6-0", None, "gnss", b"[1]")])
        with pytest.raises(TerminalError, match="entry 6-0: the report is not a JSON object"):
            exporter.send(listed)
    finally:
        exporter.close()
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        exporters.check_url(ExportConfig("s", "internal", url="mysql://x@y/z"))


def test_the_map_content_switch_of_the_context_is_read(engine: Engine, database_url: str) -> None:
    context = exporters.ExportContext(database=engine.db, map_content=False)
    exporter = exporters.make(ExportConfig("stations", "internal"), context)
    report = json.dumps(item(52.52, "01:02:03:04:05:06", 1)).encode()
    exporter.send(exporters.Batch("stations", "7-0", [exporters.Item("7-0", None, "gnss", report)]))
    exporter.send(exporters.Batch("stations", "7-0", [exporters.Item("7-0", None, "gnss", report)]))
    exporter.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ichnaea.datamap_ne").fetchone() == (0,)
        assert conn.execute("SELECT batch_id FROM ichnaea.station_batches").fetchall() == [
            ("stations:7-0",)
        ]
    wifi = show_station(engine.db, "wifi", "010203040506")
    assert wifi is not None and wifi.samples == 1  # the batch sent twice counted once
