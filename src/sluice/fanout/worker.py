"""The fan-out's consumer loop: intake stream → export streams → exporters.

One pass (`FanoutWorker.step`) fans out up to `fanout_batch` intake entries (one atomic
script, `scripts.FANOUT`) and then lets each export deliver at most one batch. `run` repeats
passes until stopped, once there is nothing left (``once``: batches are then flushed however
few and young), or after a given idle time (``until_idle``). Several workers may run at once,
on any machines: the consumer groups share the entries out, and a batch whose worker died is
taken over once it was silent for `claim_idle_seconds`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis
from redis.exceptions import RedisError, ResponseError

from sluice.errors import SluiceError, TransientError
from sluice.fanout.configs import ExportConfig
from sluice.fanout.deliver import Delivery, RetryOptions
from sluice.fanout.exporters import ExportContext, Exporter, make
from sluice.fanout.names import EXPORT_GROUP, FANOUT_GROUP, Names
from sluice.fanout.scripts import FANOUT
from sluice.text import redact_secrets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "sluice:ichnaea"
    #: Intake entries one fan-out step moves (one script call; the seed took 5000 per pass).
    fanout_batch: int = 1000
    #: Seconds between two looks at the export configs.
    config_seconds: float = 10.0
    #: Seconds to sleep when a pass found nothing to do.
    idle_sleep: float = 0.2
    retry: RetryOptions = field(default_factory=RetryOptions)
    context: ExportContext = field(default_factory=ExportContext)


@dataclass
class WorkerReport:
    passes: int = 0
    fanned_out: int = 0
    copies: int = 0
    #: Reports delivered or dead-lettered, by export.
    handled: dict[str, int] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "passes": self.passes,
            "fanned_out": self.fanned_out,
            "copies": self.copies,
            "handled": dict(sorted(self.handled.items())),
            "exports": self.exports,
            "seconds": round(self.seconds, 3),
        }


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class FanoutWorker:
    """Fans out and delivers, with the export configs `configs` returns."""

    def __init__(
        self,
        options: WorkerOptions,
        configs: Callable[[], Sequence[ExportConfig]],
        *,
        client: redis.Redis | None = None,
    ) -> None:
        self.options = options
        self.configs = configs
        self.client = client or redis.Redis.from_url(options.redis_url)
        self.names = Names(options.prefix)
        self.consumer = consumer_name()
        self._fanout = self.client.register_script(FANOUT)
        self._deliveries: dict[str, Delivery] = {}
        self._loaded: list[ExportConfig] = []
        self._loaded_at = -1e9

    def refresh(self, *, now: bool = False) -> list[ExportConfig]:
        """The export configs, read again every `config_seconds`; their groups created."""
        if not now and time.monotonic() - self._loaded_at < self.options.config_seconds:
            return self._loaded
        configs = list(self.configs())
        self._ensure_group(self.names.intake, FANOUT_GROUP)
        for config in configs:
            self._ensure_group(self.names.export(config.name), EXPORT_GROUP)
            known = self._deliveries.get(config.name)
            if known is None or known.config != config:
                if known is not None:
                    self._deliveries.pop(config.name).exporter.close()
                try:
                    exporter = self._exporter(config)
                except SluiceError as exc:
                    # Its queue still fills (nothing is lost); the others are delivered.
                    log.error("export %s cannot be delivered now: %s", config.name, exc)
                    continue
                self._deliveries[config.name] = Delivery(
                    self.client, self.names, config, exporter, self.consumer, self.options.retry
                )
        for gone in set(self._deliveries) - {c.name for c in configs}:
            self._deliveries.pop(gone).exporter.close()
        self._loaded, self._loaded_at = configs, time.monotonic()
        return configs

    def _exporter(self, config: ExportConfig) -> Exporter:
        return make(config, self.options.context)

    def _ensure_group(self, stream: str, group: str) -> None:
        try:
            self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def fan_out(self, configs: Sequence[ExportConfig]) -> tuple[int, int]:
        """Move up to `fanout_batch` intake entries to the export streams; (entries, copies).
        Without any export config nothing moves: the intake keeps its data."""
        if not configs:
            return 0, 0
        args: list[str | int] = [
            FANOUT_GROUP,
            self.consumer,
            self.options.fanout_batch,
            int(self.options.retry.claim_idle_seconds * 1000),
        ]
        for config in configs:
            args += [config.name, _csv(config.skip_keys), _csv(config.skip_sources)]
        keys = [self.names.intake, self.names.delivery]
        keys += [self.names.export(c.name) for c in configs]
        entries, copies = self._fanout(keys=keys, args=args)
        return int(entries), int(copies)

    def step(self, stop: threading.Event, report: WorkerReport, *, force: bool = False) -> bool:
        """One pass; True if it did anything."""
        configs = self.refresh()
        entries, copies = self.fan_out(configs)
        report.fanned_out += entries
        report.copies += copies
        busy = entries > 0
        for config in configs:
            if stop.is_set():
                break
            delivery = self._deliveries.get(config.name)
            done = delivery.step(stop, force=force) if delivery is not None else 0
            if done:
                report.handled[config.name] = report.handled.get(config.name, 0) + done
                busy = True
        report.passes += 1
        return busy

    def run(
        self, stop: threading.Event, *, once: bool = False, until_idle: float | None = None
    ) -> WorkerReport:
        report = WorkerReport()
        started = time.perf_counter()
        idle_since = time.monotonic()
        try:
            report.exports = [c.name for c in self.refresh(now=True)]
            while not stop.is_set():
                try:
                    busy = self.step(stop, report, force=once)
                except (RedisError, TransientError) as exc:
                    log.warning("fan-out pass failed, trying again: %s", _said(exc))
                    stop.wait(1.0)
                    continue
                if busy:
                    idle_since = time.monotonic()
                    continue
                if once:
                    break
                if until_idle is not None and time.monotonic() - idle_since >= until_idle:
                    break
                stop.wait(self.options.idle_sleep)
        finally:
            report.seconds = time.perf_counter() - started
            self.close()
        return report

    def close(self) -> None:
        for delivery in self._deliveries.values():
            delivery.exporter.close()
        self._deliveries.clear()


def _csv(values: frozenset[str]) -> str:
    return "," + ",".join(sorted(values)) + "," if values else ""


def _said(exc: Exception) -> str:
    return redact_secrets(str(exc)) if not isinstance(exc, SluiceError) else str(exc)
