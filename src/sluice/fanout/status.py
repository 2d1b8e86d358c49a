"""What the fan-out holds and did: per export its queue (depth, in hand, age of the oldest
report), its dead letters and its delivery counters; the dead letters themselves, and the
redrive that sends them again. Also the Prometheus text of these figures."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from sluice.errors import TransientError
from sluice.fanout.configs import ExportConfig
from sluice.fanout.names import COUNTERS, EXPORT_GROUP, Names
from sluice.fanout.scripts import REDRIVE
from sluice.text import redact_secrets


@dataclass(frozen=True)
class ExportStatus:
    name: str
    kind: str
    #: Reports in the export's stream (waiting or in hand).
    depth: int
    #: Reports in a batch some consumer is sending.
    in_hand: int
    oldest_age_seconds: float | None
    dead_letters: int
    counters: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "depth": self.depth,
            "in_hand": self.in_hand,
            "oldest_age_seconds": self.oldest_age_seconds,
            "dead_letters": self.dead_letters,
            **{c: self.counters.get(c, 0) for c in COUNTERS},
        }


@dataclass(frozen=True)
class DeadLetter:
    entry_id: str
    iid: str
    reason: str
    attempts: int
    failed_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "intake_id": self.iid,
            "reason": self.reason,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
        }


def _down(url: str, exc: RedisError) -> TransientError:
    return TransientError(
        f"the fan-out's Redis at {redact_secrets(url)} failed: {redact_secrets(str(exc))}"
    )


def exports_status(
    client: redis.Redis, names: Names, configs: Sequence[ExportConfig], url: str = ""
) -> list[ExportStatus]:
    try:
        raw: Any = client.hgetall(names.delivery)
        counters = {k.decode(): int(v) for k, v in raw.items()}
        found = []
        for config in configs:
            stream = names.export(config.name)
            with client.pipeline(transaction=False) as pipe:
                pipe.exists(stream)
                pipe.xlen(stream)
                pipe.xrange(stream, "-", "+", count=1)
                pipe.xlen(names.dead(config.name))
                exists, depth, first, dead = pipe.execute()
            in_hand = 0
            if exists:
                try:
                    in_hand = int(client.xpending(stream, EXPORT_GROUP)["pending"])
                except redis.ResponseError:  # no group yet: no fan-out ran
                    in_hand = 0
            age = None
            if first:
                age = max(0.0, time.time() - int(first[0][0].split(b"-")[0]) / 1000)
            mine = {c: counters.get(f"{config.name}:{c}", 0) for c in COUNTERS}
            found.append(
                ExportStatus(config.name, config.kind, int(depth), in_hand, age, int(dead), mine)
            )
        return found
    except RedisError as exc:
        raise _down(url, exc) from exc


def dead_letters(
    client: redis.Redis, names: Names, export: str, limit: int = 100, url: str = ""
) -> tuple[int, list[DeadLetter]]:
    """How many dead letters `export` has, and the first `limit` of them."""
    try:
        total = int(client.xlen(names.dead(export)))
        rows: Any = client.xrange(names.dead(export), "-", "+", count=limit)
    except RedisError as exc:
        raise _down(url, exc) from exc
    letters = []
    for entry_id, fields in rows:
        letters.append(
            DeadLetter(
                entry_id.decode(),
                fields.get(b"iid", b"").decode(),
                fields.get(b"reason", b"").decode(),
                int(fields.get(b"attempts", b"0")),
                int(fields.get(b"failed_at", b"0")) / 1000,
            )
        )
    return total, letters


def redrive(client: redis.Redis, names: Names, export: str, url: str = "") -> int:
    """Move every dead letter of `export` back onto its stream; how many moved."""
    script = client.register_script(REDRIVE)
    moved = 0
    try:
        while True:
            n = int(
                script(
                    keys=[names.dead(export), names.export(export), names.delivery],
                    args=[1000, export],
                )
            )
            moved += n
            if n == 0:
                return moved
    except RedisError as exc:
        raise _down(url, exc) from exc


def discard(client: redis.Redis, names: Names, export: str) -> int:
    """Delete an export's stream, batches and dead letters; the reports they held."""
    keys = [names.export(export), names.dead(export)]
    held = sum(int(client.xlen(k)) for k in keys)
    client.delete(*keys, names.batches(export), names.attempts(export))
    return held


def metrics_text(intake: dict[str, Any], exports: Sequence[ExportStatus]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(intake, exports))
    return generate_latest(registry)


class _Collector(Collector):
    def __init__(self, intake: dict[str, Any], exports: Sequence[ExportStatus]) -> None:
        self.intake = intake
        self.exports = exports

    def collect(self) -> Iterator[Metric]:
        reports = CounterMetricFamily(
            "sluice_ichnaea_intake_reports",
            "Reports the submit API took in, by outcome (accepted, sampled_out, dropped_*).",
            labels=["outcome"],
        )
        reports.add_metric(["accepted"], float(self.intake.get("accepted", 0)))
        reports.add_metric(["sampled_out"], float(self.intake.get("sampled_out", 0)))
        for reason, n in sorted(self.intake.get("dropped", {}).items()):
            reports.add_metric([f"dropped_{reason}"], float(n))
        yield reports
        depth = GaugeMetricFamily(
            "sluice_ichnaea_queue_depth", "Reports in a queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "sluice_ichnaea_queue_oldest_age_seconds",
            "Age of the oldest report of a queue (0 when empty).",
            labels=["queue"],
        )
        depth.add_metric(["intake"], float(self.intake.get("depth", 0)))
        age.add_metric(["intake"], float(self.intake.get("oldest_age_seconds") or 0.0))
        dead = GaugeMetricFamily(
            "sluice_ichnaea_dead_letters", "Reports in an export's dead letters.", labels=["export"]
        )
        delivery = CounterMetricFamily(
            "sluice_ichnaea_export_reports",
            "Reports by export and outcome (delivered, retried, dead_lettered, ...).",
            labels=["export", "outcome"],
        )
        for one in self.exports:
            depth.add_metric([f"export:{one.name}"], float(one.depth))
            age.add_metric([f"export:{one.name}"], float(one.oldest_age_seconds or 0.0))
            dead.add_metric([one.name], float(one.dead_letters))
            for counter in COUNTERS:
                if counter != "batches":
                    delivery.add_metric([one.name, counter], float(one.counters.get(counter, 0)))
        yield from (depth, age, dead, delivery)
