"""``/metrics`` in Prometheus's text format, read from the ledger at each scrape.

The ledger is the truth for every process (service, workers, CLI runs), so the figures are
the ledger's, not one process's counters: units by feed, kind and status; rows and bytes done
(counters: units are never deleted); unit durations (a histogram); queue depth and the age of
the oldest waiting unit; the last serving-view refresh of each view; worker processes alive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sluice.status import DURATION_BUCKETS, LedgerMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DONE = {"loaded", "archived"}
_WAITING = {"ready", "ready_for_ingesting"}


def render(metrics: LedgerMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Ledger(metrics))
    return generate_latest(registry)


class _Ledger(Collector):
    def __init__(self, metrics: LedgerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._units()
        yield self._durations()
        yield from self._workers()
        refresh = GaugeMetricFamily(
            "sluice_serving_refresh_seconds",
            "Seconds the last refresh of each serving view took.",
            labels=["view"],
        )
        for view, seconds in sorted(self.metrics.refreshes.items()):
            refresh.add_metric([view], seconds)
        yield refresh

    def _units(self) -> Iterator[Metric]:
        units = GaugeMetricFamily(
            "sluice_units",
            "Units of work by feed, kind and status.",
            labels=["feed", "kind", "status"],
        )
        rows = CounterMetricFamily(
            "sluice_rows", "Rows of the units done (loaded or archived).", labels=["feed", "kind"]
        )
        data = CounterMetricFamily(
            "sluice_bytes", "Bytes read by the units done.", labels=["feed", "kind"]
        )
        depth = GaugeMetricFamily(
            "sluice_queue_depth", "Units waiting to be claimed.", labels=["feed", "kind"]
        )
        oldest = GaugeMetricFamily(
            "sluice_oldest_ready_age_seconds",
            "Age of the oldest unit waiting to be claimed.",
            labels=["feed", "kind"],
        )
        # Every feed and kind with units gets each series, at 0 when nothing is done or waits:
        # an alert on the queue depth must see 0, not a series that vanished.
        done: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        waiting: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        for row in self.metrics.units:
            labels = (str(row["feed"]), str(row["kind"]))
            units.add_metric([*labels, str(row["status"])], float(row["units"]))
            counted, queued = done[labels], waiting[labels]
            if row["status"] in _DONE:
                counted[0] += int(row["rows"])
                counted[1] += int(row["bytes"])
            if row["status"] in _WAITING:
                queued[0] += int(row["units"])
                queued[1] = self.metrics.oldest.get(labels, 0.0)
        for labels, (row_count, byte_count) in sorted(done.items()):
            rows.add_metric(list(labels), float(row_count))
            data.add_metric(list(labels), float(byte_count))
        for labels, (count, age) in sorted(waiting.items()):
            depth.add_metric(list(labels), float(count))
            oldest.add_metric(list(labels), age)
        yield from (units, rows, data, depth, oldest)

    def _durations(self) -> Metric:
        histogram = HistogramMetricFamily(
            "sluice_unit_duration_seconds",
            "Seconds from claim to commit of the units done.",
            labels=["feed"],
        )
        by_feed: dict[str, dict[float, Any]] = defaultdict(dict)
        for row in self.metrics.durations:
            by_feed[str(row["feed"])][float(row["le"])] = row
        for feed, found in sorted(by_feed.items()):
            # The ledger counts each unit in its own bucket; Prometheus's buckets are cumulative.
            buckets, below, seconds = [], 0.0, 0.0
            for bound in DURATION_BUCKETS:
                bucket = found.get(bound)
                if bucket is not None:
                    below += float(bucket["units"])
                    seconds += float(bucket["seconds"])
                buckets.append((_le(bound), below))
            histogram.add_metric([feed], buckets, sum_value=seconds)
        return histogram

    def _workers(self) -> Iterator[Metric]:
        workers = GaugeMetricFamily(
            "sluice_workers",
            "Processes working the queue that were heard from lately (Celery workers, services).",
            labels=["kind"],
        )
        for kind in ("worker", "service"):
            workers.add_metric([kind], float(self.metrics.workers.get(kind, 0)))
        yield workers


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
