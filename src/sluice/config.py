"""Typed settings: the project file ``sluice.toml`` plus ``SLUICE_*`` environment variables.

Resolution order, last wins: built-in defaults, the project file, the environment. Settings are
resolved once at start-up into a frozen `Settings`; nothing reads the environment later.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sluice import schedule
from sluice.db import DatabaseOptions, check_url
from sluice.errors import ConfigError
from sluice.export.options import DEFAULT_SCHEDULE as EXPORT_SCHEDULE
from sluice.export.options import ExportDeclaration, SourceOptions
from sluice.load.bulk import BulkOptions
from sluice.load.spec import (
    BAD_ROWS,
    SERVING_KINDS,
    WRITE_MODES,
    Column,
    CsvFormat,
    Feed,
    Index,
    ServingView,
    TableSpec,
)
from sluice.recipes.cubic.dmap import DmapOptions, parse_dmap
from sluice.recipes.cubic.options import CubicOptions, parse_cubic
from sluice.recipes.ichnaea.options import IchnaeaOptions
from sluice.runtime.runner import RunnerOptions
from sluice.store import S3Options
from sluice.stream.options import StreamDeclaration, parse_streams
from sluice.sync.flow import DEFAULT_SCHEDULE as SYNC_SCHEDULE
from sluice.sync.flow import SyncDeclaration

PROJECT_FILE = "sluice.toml"
T = TypeVar("T")


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
    _only_keys(
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
    project = _section(data, "project", where)
    broker = _section(data, "broker", where)
    _only_keys(broker, {"url", "queue"}, f"{where} [broker]")
    database = _section(data, "database", where)
    s3 = _section(data, "s3", where)
    load = _section(data, "load", where)
    _only_keys(project, {"state_dir"}, f"{where} [project]")
    _only_keys(database, {"url"}, f"{where} [database]")
    _only_keys(s3, {"endpoint_url", "region"}, f"{where} [s3]")
    _only_keys(
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

    state_dir = env.get("SLUICE_STATE_DIR") or _get(project, "state_dir", str, ".sluice", where)
    state_path = Path(state_dir)
    if not state_path.is_absolute():
        state_path = (root / state_path).resolve()
    url = env.get("SLUICE_DATABASE_URL") or _get(database, "url", str, "", where)
    if url:
        check_url(url)

    s3_options = S3Options(
        endpoint_url=env.get("SLUICE_S3_ENDPOINT_URL") or _get(s3, "endpoint_url", str, "", where),
        region=env.get("SLUICE_S3_REGION") or _get(s3, "region", str, "us-east-1", where),
    )
    defaults = LoadOptions()
    load_options = LoadOptions(
        workers=_bounded(env, load, "workers", defaults.workers, where),
        lease_seconds=_bounded(env, load, "lease_seconds", defaults.lease_seconds, where),
        max_attempts=_bounded(env, load, "max_attempts", defaults.max_attempts, where),
        stage_parallelism=_bounded(
            env, load, "stage_parallelism", defaults.stage_parallelism, where
        ),
        chunk_bytes=_bounded(env, load, "chunk_mb", defaults.chunk_bytes >> 20, where) << 20,
        max_line_mb=_bounded(env, load, "max_line_mb", defaults.max_line_mb, where),
    )
    broker_url = (
        env.get("SLUICE_BROKER_URL")
        or env.get("SLUICE_REDIS_URL")
        or _get(broker, "url", str, DEFAULT_BROKER, where)
    )
    feeds = {}
    for name, body in _section(data, "feeds", where).items():
        feed_where = f"{where} [feeds.{name}]"
        try:
            feeds[name] = _feed(name, body, feed_where, root)
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
        syncs=_syncs(_section(data, "syncs", where), where),
        exports=_exports(_section(data, "exports", where), where, state_path, root),
        broker_url=broker_url,
        broker_queue=env.get("SLUICE_QUEUE") or _get(broker, "queue", str, "sluice", where),
        ichnaea=_ichnaea(_section(data, "ichnaea", where), env, where),
        cubic=parse_cubic(_section(data, "cubic", where), env, state_path, root, where),
        cubic_dmap=parse_dmap(_section(data, "cubic", where).get("dmap", {}), env, where),
        streams=parse_streams(_section(data, "streams", where), env, where),
    )


def _feed(name: str, body: Any, where: str, root: Path) -> Feed:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a table")
    _only_keys(
        body,
        {
            "source",
            "pattern",
            "table",
            "schema",
            "columns",
            "key",
            "values",
            "mode",
            "on_bad_rows",
            "max_rejects",
            "allow_empty",
            "format",
            "serving",
            "constants",
            "schedule",
            "ordered",
            "max_active",
        },
        where,
    )
    columns = tuple(Column.parse(c) for c in _words(body, "columns", where))
    if not columns:
        raise ConfigError(f"{where}: 'columns' must list at least one 'name type' entry")
    constants: dict[str, str] = {
        str(k): str(v) for k, v in _table(body, "constants", where).items()
    }
    fmt = _table(body, "format", where)
    _only_keys(fmt, {"delimiter", "quote", "header"}, f"{where} format")
    serving = _serving_body(body, where)
    mode = _get(body, "mode", str, "upsert", where)
    if mode not in WRITE_MODES:
        raise ConfigError(f"{where}: mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
    bad_rows = _get(body, "on_bad_rows", str, "fail_file", where)
    if bad_rows not in BAD_ROWS:
        raise ConfigError(f"{where}: on_bad_rows must be one of {', '.join(BAD_ROWS)}")
    spec = TableSpec(
        name=_get(body, "table", str, name, where),
        schema=_get(body, "schema", str, "public", where),
        columns=columns,
        key=tuple(_words(body, "key", where)),
        values=tuple(_words(body, "values", where)),
        mode=mode,
        constants=tuple(Column(name=c, type="text", nullable=False) for c in constants),
        on_bad_rows=bad_rows,
        max_rejects=_within(_get(body, "max_rejects", int, 1000, where), "max_rejects", where),
        allow_empty=_get(body, "allow_empty", bool, False, where),
        format=CsvFormat(
            delimiter=_get(fmt, "delimiter", str, ",", where),
            quote=_get(fmt, "quote", str, '"', where),
            header=_get(fmt, "header", bool, False, where),
        ),
        serving=_serving(serving, _get(body, "table", str, name, where), where)
        if serving
        else None,
    )
    source = _get(body, "source", str, "", where)
    if not source:
        raise ConfigError(f"{where}: 'source' is required (a folder, s3:// or gs:// URL)")
    if "://" not in source and not Path(source).is_absolute():
        source = str((root / source).resolve())
    return Feed(
        name=name,
        table=spec,
        source=source,
        pattern=_get(body, "pattern", str, r".*\.csv(\.gz)?", where),
        constants=constants,
        schedule=_get(body, "schedule", str, schedule.DEFAULT, where),
        ordered=_get(body, "ordered", bool, False, where),
        max_active=_get(body, "max_active", int, None, where),
    )


def _syncs(section: dict[str, Any], where: str) -> dict[str, SyncDeclaration]:
    """``[syncs.NAME]`` tables: a recipe, a schedule, and the recipe's own options (checked by
    the recipe when the sync is registered)."""
    syncs = {}
    for name, body in section.items():
        sync_where = f"{where} [syncs.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{sync_where}: expected a table")
        options = {k: v for k, v in body.items() if k not in {"recipe", "schedule"}}
        recipe = _get(body, "recipe", str, "", sync_where)
        if not recipe:
            raise ConfigError(f"{sync_where}: 'recipe' is required (e.g. recipe = \"cryoet\")")
        try:
            syncs[name] = SyncDeclaration(
                name=name,
                recipe=recipe,
                options=options,
                schedule=_get(body, "schedule", str, SYNC_SCHEDULE, sync_where),
            )
        except ConfigError as exc:
            raise ConfigError(f"{sync_where}: {exc}") from None
    return syncs


_EXPORT_KEYS = {
    "recipe",
    "type",
    "start",
    "end",
    "source_url",
    "source_schema",
    "out_dir",
    "lake",
    "warehouse",
    "aggregate_as_string",
    "schedule",
}


def _exports(
    section: dict[str, Any], where: str, state: Path, root: Path
) -> dict[str, ExportDeclaration]:
    """``[exports.NAME]`` tables: a recipe and its type, the days, the source, where the
    Parquet, the lake and the warehouse are (relative paths: to the project folder; by
    default under the state directory). The recipe is checked when the feed is registered."""
    exports = {}
    for name, body in section.items():
        at = f"{where} [exports.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{at}: expected a table")
        _only_keys(body, _EXPORT_KEYS, at)
        for key in ("recipe", "type"):
            if not _get(body, key, str, "", at):
                raise ConfigError(f"{at}: {key!r} is required")

        def place(key: str, default: Path, at: str = at, body: dict[str, Any] = body) -> Path:
            text = _get(body, key, str, "", at)
            return (root / text).resolve() if text else default

        try:
            exports[name] = ExportDeclaration(
                name=name,
                recipe=body["recipe"],
                kind=body["type"],
                out_dir=place("out_dir", state / "export"),
                source=SourceOptions(
                    url=_get(body, "source_url", str, "", at) or None,
                    schema=_get(body, "source_schema", str, SourceOptions().schema, at),
                ),
                as_string=_get(body, "aggregate_as_string", bool, False, at),
                lake_dir=place("lake", state / "lake"),
                warehouse=place("warehouse", state / "warehouse.duckdb"),
                start=_day(body, "start", at),
                end=_day(body, "end", at),
                schedule=_get(body, "schedule", str, EXPORT_SCHEDULE, at),
            )
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith(at) else f"{at}: {message}") from None
    return exports


def _day(body: dict[str, Any], key: str, where: str) -> date | None:
    """A TOML date (``2019-12-01``) or the same as a string."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key} must be a day (YYYY-MM-DD), got {value!r}")


def _serving_body(body: dict[str, Any], where: str) -> dict[str, Any]:
    """``serving = "incremental"`` / ``"matview"`` (a copy named ``view_<table>``, unique on
    ``id``), or a table: ``{ view, kind, unique, indexes }``."""
    value = body.get("serving", {})
    if isinstance(value, str):
        return {"kind": value}
    return _table(body, "serving", where)


def _serving(body: dict[str, Any], table: str, where: str) -> ServingView:
    _only_keys(body, {"view", "kind", "indexes", "unique"}, f"{where} serving")
    unique = tuple(_words(body, "unique", where) or ["id"])
    indexes = [Index(columns=unique, unique=True)]
    indexes += [Index(columns=(c,)) for c in _words(body, "indexes", where)]
    kind = _get(body, "kind", str, "incremental", where)
    if kind not in SERVING_KINDS:
        raise ConfigError(
            f"{where}: serving kind must be one of {', '.join(SERVING_KINDS)}, got {kind!r}"
        )
    return ServingView(
        name=_get(body, "view", str, f"view_{table}", where),
        indexes=tuple(indexes),
        kind=kind,
    )


def _section(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _only_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
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
    _only_keys(section, set(known), where)
    values: dict[str, Any] = {}
    for name, default in known.items():
        raw = env.get(_ICHNAEA_ENV.get(name, ""))
        if raw:
            value = _parsed(raw, type(default), _ICHNAEA_ENV[name])
        elif isinstance(default, float):  # a whole number is a fine number of seconds
            value = section.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
            value = float(value)
        else:
            value = _get(section, name, type(default), default, where)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and value < 0:
            raise ConfigError(f"{where}: {name} must be 0 or more, got {value}")
        values[name] = value
    return IchnaeaOptions(**values)


def _parsed(raw: str, kind: type, where: str) -> Any:
    if kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{where} must be a whole number, got {raw[:40]!r}") from None


def _get(data: dict[str, Any], key: str, kind: type[T], default: T, where: str) -> T:
    if key not in data:
        return default
    value = data[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value


def _words(data: dict[str, Any], key: str, where: str) -> list[str]:
    """A list of strings."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
    return value


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table, got {value!r}")
    return value


#: The smallest and largest value of each numeric setting: a value outside is a typo, and
#: would fail later in a worse way (threads that cannot sleep that long, chunks that cannot be
#: allocated).
BOUNDS: dict[str, tuple[int, int]] = {
    "workers": (1, 64),
    "lease_seconds": (1, 86_400),
    "max_attempts": (1, 100),
    "stage_parallelism": (1, 32),
    "chunk_mb": (1, 1024),
    "max_line_mb": (1, 1024),
    "max_rejects": (0, 1_000_000_000),
}


def _within(value: int, key: str, where: str) -> int:
    low, high = BOUNDS[key]
    if value < low:
        kind = "a positive integer" if low == 1 else f"at least {low}"
        raise ConfigError(f"{where}: {key} must be {kind}, got {value!r}")
    if value > high:
        raise ConfigError(f"{where}: {key} must be at most {high:,}, got {value!r}")
    return value


def _bounded(
    env: Mapping[str, str], section: dict[str, Any], key: str, default: int, where: str
) -> int:
    """An integer setting from the environment (``SLUICE_<KEY>``) or the file, within its
    bounds."""
    env_key = f"SLUICE_{key.upper()}"
    if env_key in env:
        raw: Any = env[env_key]
        where = env_key
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{env_key} must be a positive integer, got {raw!r}") from None
        if value < 1:
            raise ConfigError(f"{env_key} must be a positive integer, got {raw!r}")
        return _within(value, key, env_key)
    return _within(_get(section, key, int, default, where), key, where)


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
