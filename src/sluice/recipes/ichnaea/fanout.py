"""The Ichnaea fan-out's Python API: export configs (`add_export` ... `remove_export`), the
consumer loop (`run_fanout`), dead letters and the delivery status. The CLI verbs
(``sluice ichnaea exports|fanout|redrive|dead-letters``) and the service's ``/metrics`` are
shells over it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import redis
from redis.exceptions import RedisError

from sluice.db import Database
from sluice.errors import ConfigError, TransientError
from sluice.fanout import exporters
from sluice.fanout.configs import ConfigStore, ExportConfig, check
from sluice.fanout.deliver import RetryOptions
from sluice.fanout.exporters import ExportContext
from sluice.fanout.names import Names
from sluice.fanout.status import DeadLetter, ExportStatus, dead_letters, discard, exports_status
from sluice.fanout.status import redrive as redrive_stream
from sluice.fanout.worker import FanoutWorker, WorkerOptions, WorkerReport
from sluice.recipes.ichnaea.options import SCHEMA, IchnaeaOptions
from sluice.store import S3Options
from sluice.text import redact_secrets


def configs(db: Database) -> ConfigStore:
    return ConfigStore(db, SCHEMA)


@contextmanager
def _redis(options: IchnaeaOptions) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(options.redis_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        yield client
    except RedisError as exc:
        where = redact_secrets(options.redis_url)
        raise TransientError(f"Redis at {where} failed: {redact_secrets(str(exc))}") from exc
    finally:
        client.close()


# -- export configs -------------------------------------------------------------------------------


def add_export(db: Database, config: ExportConfig) -> ExportConfig:
    check(config, exporters.kinds())
    exporters.check_url(config)
    configs(db).add(config)
    return config


def list_exports(db: Database) -> list[ExportConfig]:
    return configs(db).list()


def update_export(db: Database, name: str, **changes: Any) -> ExportConfig:
    store = configs(db)
    changed = replace(store.get(name), **changes)
    check(changed, exporters.kinds())
    exporters.check_url(changed)
    return store.update(name, **changes)


def remove_export(
    db: Database, options: IchnaeaOptions, name: str, *, discard_data: bool = False
) -> int:
    """Remove an export config; refused while its queue or dead letters hold reports, unless
    `discard_data` (then they are deleted, and their number returned)."""
    store = configs(db)
    store.get(name)
    names = Names(options.redis_prefix)
    with _redis(options) as client:
        held = int(client.xlen(names.export(name))) + int(client.xlen(names.dead(name)))
        if held and not discard_data:
            raise ConfigError(
                f"export {name!r} still holds {held} reports (queued or dead letters): let "
                "the fan-out deliver them, or remove it with --discard to drop them"
            )
        store.remove(name)
        return discard(client, names, name) if held else 0


# -- the consumer loop ----------------------------------------------------------------------------


def worker_options(
    options: IchnaeaOptions, s3: S3Options | None = None, db: Database | None = None
) -> WorkerOptions:
    return WorkerOptions(
        redis_url=options.redis_url,
        prefix=options.redis_prefix,
        fanout_batch=options.fanout_batch,
        config_seconds=options.config_seconds,
        retry=RetryOptions(options.retry_base_seconds, options.claim_idle_seconds),
        context=ExportContext(s3 or S3Options(), options.export_timeout_seconds, database=db),
    )


def run_fanout(
    db: Database,
    options: IchnaeaOptions,
    stop: threading.Event,
    *,
    s3: S3Options | None = None,
    once: bool = False,
    until_idle: float | None = None,
) -> WorkerReport:
    """Fan out and deliver until `stop` is set (or, with `once`, until nothing is left; with
    `until_idle`, until nothing was done for that many seconds)."""
    store = configs(db)
    worker = FanoutWorker(worker_options(options, s3, db), store.list)
    try:
        return worker.run(stop, once=once, until_idle=until_idle)
    except RedisError as exc:
        where = redact_secrets(options.redis_url)
        raise TransientError(f"Redis at {where} failed: {redact_secrets(str(exc))}") from exc


# -- status and dead letters ----------------------------------------------------------------------


def delivery_status(db: Database, options: IchnaeaOptions) -> list[ExportStatus]:
    found = list_exports(db)
    with _redis(options) as client:
        return exports_status(client, Names(options.redis_prefix), found, options.redis_url)


def list_dead_letters(
    db: Database, options: IchnaeaOptions, name: str, limit: int = 100
) -> tuple[int, list[DeadLetter]]:
    configs(db).get(name)
    with _redis(options) as client:
        return dead_letters(client, Names(options.redis_prefix), name, limit, options.redis_url)


def redrive(db: Database, options: IchnaeaOptions, name: str) -> int:
    """Send the dead letters of export `name` again: back onto its queue; how many."""
    configs(db).get(name)
    with _redis(options) as client:
        return redrive_stream(client, Names(options.redis_prefix), name, options.redis_url)


class FanoutConsumer:
    """The fan-out as a consumer of the runtime (`sluice.runtime.flows.Consumer`): ``sluice
    run`` and ``sluice worker`` run it beside their flows when ``[ichnaea] enabled = true``."""

    name = "ichnaea-fanout"

    def __init__(self, db: Database, options: IchnaeaOptions, s3: S3Options | None = None) -> None:
        self.db = db
        self.options = options
        self.s3 = s3

    def run(self, stop: threading.Event, *, once: bool) -> WorkerReport:
        return run_fanout(self.db, self.options, stop, s3=self.s3, once=once)

    def status(self) -> dict[str, Any]:
        """The intake's figures, a warning when no export config takes its reports, and one
        line per export: its queue and delivery counts."""
        from sluice.recipes.ichnaea.api import full_status

        full = full_status(self.db, self.options)
        shown = {k: v for k, v in full.items() if k not in ("exports", "warning")}
        if full["warning"]:
            shown["warning"] = full["warning"]
        for one in full["exports"]:
            shown[f"export {one['name']}"] = (
                f"{one['kind']}: depth {one['depth']}, delivered {one['delivered']}, "
                f"retried {one['retried']}, dead-lettered {one['dead_lettered']}, "
                f"dead letters {one['dead_letters']}"
            )
        return shown
