"""Typed settings: the project file ``sluice.toml`` plus ``SLUICE_*`` environment variables.

Resolution order, last wins: built-in defaults, the project file, the environment. Settings are
resolved once at start-up into a frozen `Settings`; nothing reads the environment later.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sluice import declared
from sluice import tomlread as tv
from sluice.db import DatabaseOptions, check_url
from sluice.errors import ConfigError
from sluice.export.options import ExportDeclaration
from sluice.load.bulk import BulkOptions
from sluice.load.spec import (
    Feed,
)
from sluice.recipes.cubic.dmap import DmapOptions, parse_dmap
from sluice.recipes.cubic.options import CubicOptions, parse_cubic
from sluice.recipes.ichnaea.options import IchnaeaOptions
from sluice.runtime.runner import RunnerOptions
from sluice.store import S3Options
from sluice.stream.options import StreamDeclaration, parse_streams
from sluice.sync.flow import SyncDeclaration

PROJECT_FILE = "sluice.toml"


@dataclass(frozen=True)
class LoadOptions:
    """How loads are run."""

    #: Loads processed at once by one process.
    workers: int = 1
    #: A claimed load belongs to its worker for this long; the worker renews it while it works.
    lease_seconds: int = 120
    #: A load whose transient errors exceed this many attempts is errored.
    max_attempts: int = 5
    #: Connections that COPY into staging at once when a file is staged before its merge.
    stage_parallelism: int = 2
    #: Bytes per COPY chunk on the staged path (also the unit of rescue for bad rows).
    chunk_bytes: int = 8 << 20
    #: A physical line longer than this many MiB fails its object (a gzip bomb, a file that
    #: is not CSV), whatever the path: memory stays bounded.
    max_line_mb: int = 64


#: The broker Celery workers use when none is configured.
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Settings:
    """Everything a sluice process needs to know, resolved once."""

    #: The project file the settings came from, if any.
    project_file: Path | None = None
    #: Where the embedded PostgreSQL keeps its data (and other local state).
    state_dir: Path = field(default_factory=lambda: Path(".sluice").resolve())
    #: PostgreSQL URL; empty means "start the embedded server in state_dir".
    database_url: str = ""
    s3: S3Options = field(default_factory=S3Options)
    load: LoadOptions = field(default_factory=LoadOptions)
    #: Feeds declared in the project file, by name.
    feeds: Mapping[str, Feed] = field(default_factory=dict)
    #: Hierarchical syncs declared in the project file (``[syncs.NAME]``), by name.
    syncs: Mapping[str, SyncDeclaration] = field(default_factory=dict)
    #: Export feeds declared in the project file (``[exports.NAME]``), by name.
    exports: Mapping[str, ExportDeclaration] = field(default_factory=dict)
    #: The Celery broker (``sluice worker``, ``sluice scheduler``) and the queue on it.
    broker_url: str = DEFAULT_BROKER
    broker_queue: str = "sluice"
    #: The Ichnaea intake (``[ichnaea]``): its Redis, its bounds, whether ``sluice serve``
    #: mounts the submit routes.
    ichnaea: IchnaeaOptions = field(default_factory=IchnaeaOptions)
    #: The Cubic routing (``[cubic]``): Incoming, Archive, Error and lake locations, tables.
    cubic: CubicOptions = field(default_factory=CubicOptions)
    #: The DMAP fetcher (``[cubic.dmap]``): the API, its keys, its schedule.
    cubic_dmap: DmapOptions = field(default_factory=DmapOptions)
    #: Broker streams ``sluice run`` batches into the Cubic Incoming (``[streams.NAME]``).
    streams: Mapping[str, StreamDeclaration] = field(default_factory=dict)

    @property
    def database(self) -> DatabaseOptions:
        """The options of the database layer."""
        pool = self.load.workers * (self.load.stage_parallelism + 2) + 4
        return DatabaseOptions(url=self.database_url, state_dir=self.state_dir, pool_size=pool)

    @property
    def bulk(self) -> BulkOptions:
        """The options of the bulk load path."""
        return BulkOptions(
            stage_parallelism=self.load.stage_parallelism,
            chunk_bytes=self.load.chunk_bytes,
            max_line_bytes=self.load.max_line_mb << 20,
        )

    @property
    def runner(self) -> RunnerOptions:
        """The options of the runner that drives steps over the work queue."""
        return RunnerOptions(
            workers=self.load.workers,
            lease_seconds=self.load.lease_seconds,
            max_attempts=self.load.max_attempts,
        )

    @property
    def root(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.project_file.parent if self.project_file else Path.cwd()

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest ``sluice.toml`` in `start` or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_settings(
    project_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings from the project file (explicit, ``SLUICE_PROJECT`` or the nearest
    ``sluice.toml``) and the environment."""
    env = os.environ if environ is None else environ
    if project_file is None and env.get("SLUICE_PROJECT"):
        project_file = Path(env["SLUICE_PROJECT"])
    if project_file is not None and not project_file.is_file():
        raise ConfigError(f"project file {project_file} does not exist")
    path = project_file or find_project_file()
    data = _read_toml(path) if path else {}
    root = path.parent.resolve() if path else Path.cwd()
    return _from_data(data, env, path.resolve() if path else None, root)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1]
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {bad!r})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _from_data(
    data: dict[str, Any], env: Mapping[str, str], path: Path | None, root: Path
) -> Settings:
    where = str(path) if path else "settings"
    tv.only_keys(
        data,
        {
            "project",
            "database",
            "s3",
            "load",
            "broker",
            "feeds",
            "syncs",
            "exports",
            "ichnaea",
            "cubic",
            "streams",
        },
        where,
    )
    project = tv.section(data, "project", where)
    broker = tv.section(data, "broker", where)
    tv.only_keys(broker, {"url", "queue"}, f"{where} [broker]")
    database = tv.section(data, "database", where)
    s3 = tv.section(data, "s3", where)
    load = tv.section(data, "load", where)
    tv.only_keys(project, {"state_dir"}, f"{where} [project]")
    tv.only_keys(database, {"url"}, f"{where} [database]")
    tv.only_keys(s3, {"endpoint_url", "region"}, f"{where} [s3]")
    tv.only_keys(
        load,
        {
            "workers",
            "lease_seconds",
            "max_attempts",
            "stage_parallelism",
            "chunk_mb",
            "max_line_mb",
        },
        f"{where} [load]",
    )

    state_dir = env.get("SLUICE_STATE_DIR") or tv.get(project, "state_dir", str, ".sluice", where)
    state_path = Path(state_dir)
    if not state_path.is_absolute():
        state_path = (root / state_path).resolve()
    url = env.get("SLUICE_DATABASE_URL") or tv.get(database, "url", str, "", where)
    if url:
        check_url(url)

    s3_options = S3Options(
        endpoint_url=env.get("SLUICE_S3_ENDPOINT_URL")
        or tv.get(s3, "endpoint_url", str, "", where),
        region=env.get("SLUICE_S3_REGION") or tv.get(s3, "region", str, "us-east-1", where),
    )
    defaults = LoadOptions()
    load_options = LoadOptions(
        workers=tv.bounded(env, load, "workers", defaults.workers, where),
        lease_seconds=tv.bounded(env, load, "lease_seconds", defaults.lease_seconds, where),
        max_attempts=tv.bounded(env, load, "max_attempts", defaults.max_attempts, where),
        stage_parallelism=tv.bounded(
            env, load, "stage_parallelism", defaults.stage_parallelism, where
        ),
        chunk_bytes=tv.bounded(env, load, "chunk_mb", defaults.chunk_bytes >> 20, where) << 20,
        max_line_mb=tv.bounded(env, load, "max_line_mb", defaults.max_line_mb, where),
    )
    broker_url = (
        env.get("SLUICE_BROKER_URL")
        or env.get("SLUICE_REDIS_URL")
        or tv.get(broker, "url", str, DEFAULT_BROKER, where)
    )
    feeds = {}
    for name, body in tv.section(data, "feeds", where).items():
        feed_where = f"{where} [feeds.{name}]"
        try:
            feeds[name] = declared.feed(name, body, feed_where, root)
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(
                message if message.startswith(feed_where) else f"{feed_where}: {message}"
            ) from None
    return Settings(
        project_file=path,
        state_dir=state_path,
        database_url=url,
        s3=s3_options,
        load=load_options,
        feeds=feeds,
        syncs=declared.syncs(tv.section(data, "syncs", where), where),
        exports=declared.exports(tv.section(data, "exports", where), where, state_path, root),
        broker_url=broker_url,
        broker_queue=env.get("SLUICE_QUEUE") or tv.get(broker, "queue", str, "sluice", where),
        ichnaea=_ichnaea(tv.section(data, "ichnaea", where), env, where),
        cubic=parse_cubic(tv.section(data, "cubic", where), env, state_path, root, where),
        cubic_dmap=parse_dmap(tv.section(data, "cubic", where).get("dmap", {}), env, where),
        streams=parse_streams(tv.section(data, "streams", where), env, where),
    )


#: The ``[ichnaea]`` settings the environment overrides, and its names for them.
_ICHNAEA_ENV = {
    "redis_url": "SLUICE_REDIS_URL",
    "redis_prefix": "SLUICE_ICHNAEA_REDIS_PREFIX",
    "max_backlog": "SLUICE_ICHNAEA_MAX_BACKLOG",
    "retry_after": "SLUICE_ICHNAEA_RETRY_AFTER",
}


def _ichnaea(section: dict[str, Any], env: Mapping[str, str], where: str) -> IchnaeaOptions:
    """``[ichnaea]``: each key has the type of its default; a few come from the environment."""
    where = f"{where} [ichnaea]"
    defaults = IchnaeaOptions()
    known = {f.name: getattr(defaults, f.name) for f in fields(IchnaeaOptions)}
    tv.only_keys(section, set(known), where)
    values: dict[str, Any] = {}
    for name, default in known.items():
        raw = env.get(_ICHNAEA_ENV.get(name, ""))
        if raw:
            value = tv.parsed(raw, type(default), _ICHNAEA_ENV[name])
        elif isinstance(default, float):  # a whole number is a fine number of seconds
            value = section.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
            value = float(value)
        else:
            value = tv.get(section, name, type(default), default, where)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and value < 0:
            raise ConfigError(f"{where}: {name} must be 0 or more, got {value}")
        values[name] = value
    return IchnaeaOptions(**values)


STARTER = """\
# sluice project file. Every setting below shows its default; uncomment to change it.
# Environment variables override this file: SLUICE_DATABASE_URL, SLUICE_STATE_DIR,
# SLUICE_WORKERS, SLUICE_LEASE_SECONDS, SLUICE_MAX_ATTEMPTS, SLUICE_S3_ENDPOINT_URL, ...

[project]
# Where the embedded PostgreSQL keeps its data when no database URL is given.
# state_dir = ".sluice"

[database]
# A PostgreSQL (>= 15) URL. Empty: sluice starts a private server in state_dir.
# url = "postgresql://user@127.0.0.1:5432/sluice"

[s3]
# An S3-compatible endpoint; credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
# endpoint_url = "http://127.0.0.1:9000"
# region = "us-east-1"

[load]
# workers = 1             # loads processed at once by one process
# lease_seconds = 120     # a claimed load returns to the queue if its worker stops renewing it
# max_attempts = 5        # transient failures before a load is errored
# stage_parallelism = 2   # connections that COPY into staging at once
# chunk_mb = 8            # COPY chunk size on the staged path
# max_line_mb = 64        # a longer line fails its object (a gzip bomb, a file that is not CSV)

# A feed: objects under `source` whose key (below the source) fully matches `pattern`
# are loaded into `table`. Run it with `sluice import NAME`.
#
# [feeds.events]
# source = "data/incoming"            # a folder, s3://bucket/prefix or gs://bucket/prefix
# pattern = 'events-\\d+\\.csv(\\.gz)?'
# table = "events"
# columns = ["event_id bigint not null", "kind text not null", "payload text"]
# key = ["event_id", "kind"]          # natural key (NULL-safe); required for upsert
# mode = "upsert"                     # append | upsert | replace
# on_bad_rows = "fail_file"           # fail_file: all or nothing | reject: load good rows,
#                                     # write bad ones to <object>.rejects-<load>.csv
# format = { header = false, delimiter = ",", quote = '"' }
# serving = { view = "view_events", unique = ["id"], indexes = ["kind"] }  # id: added by sluice
#                                     # kind = "incremental" (a view holding back each run's
#                                     # changes until it ends) | "matview" (refreshed
#                                     # concurrently)
# schedule = "60s"                    # how often 'sluice run' scans it: "5m", "1h", "0 15 * * *"
# ordered = false                     # true: one object at a time, in key order
# max_active = 4                      # at most this many of its objects in hand at once

# The Celery broker of 'sluice worker' and 'sluice scheduler' (env SLUICE_BROKER_URL).
# [broker]
# url = "redis://127.0.0.1:6379/0"
# queue = "sluice"

# A hierarchical sync run by 'sluice run' on its schedule (each dataset folder a unit).
# [syncs.portal]
# recipe = "cryoet"
# bucket = "s3://cryoet-data-portal-public"
# s3_prefix = "10000"
# everything = true
# schedule = "1h"
"""
