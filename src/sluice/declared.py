"""The ``[feeds.*]``, ``[syncs.*]`` and ``[exports.*]`` sections of the project file, read into
the declarations of their flows (`sluice.config` reads the rest)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from sluice import schedule
from sluice import tomlread as tv
from sluice.errors import ConfigError
from sluice.export.options import DEFAULT_SCHEDULE as EXPORT_SCHEDULE
from sluice.export.options import ExportDeclaration, SourceOptions
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
from sluice.sync.flow import DEFAULT_SCHEDULE as SYNC_SCHEDULE
from sluice.sync.flow import SyncDeclaration


def feed(name: str, body: Any, where: str, root: Path) -> Feed:
    """``[feeds.NAME]``: a table feed, its source resolved against the project's `root`."""
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a table")
    tv.only_keys(
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
    columns = tuple(Column.parse(c) for c in tv.words(body, "columns", where))
    if not columns:
        raise ConfigError(f"{where}: 'columns' must list at least one 'name type' entry")
    constants: dict[str, str] = {
        str(k): str(v) for k, v in tv.table(body, "constants", where).items()
    }
    fmt = tv.table(body, "format", where)
    tv.only_keys(fmt, {"delimiter", "quote", "header"}, f"{where} format")
    serving = _serving_body(body, where)
    mode = tv.get(body, "mode", str, "upsert", where)
    if mode not in WRITE_MODES:
        raise ConfigError(f"{where}: mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
    bad_rows = tv.get(body, "on_bad_rows", str, "fail_file", where)
    if bad_rows not in BAD_ROWS:
        raise ConfigError(f"{where}: on_bad_rows must be one of {', '.join(BAD_ROWS)}")
    spec = TableSpec(
        name=tv.get(body, "table", str, name, where),
        schema=tv.get(body, "schema", str, "public", where),
        columns=columns,
        key=tuple(tv.words(body, "key", where)),
        values=tuple(tv.words(body, "values", where)),
        mode=mode,
        constants=tuple(Column(name=c, type="text", nullable=False) for c in constants),
        on_bad_rows=bad_rows,
        max_rejects=tv.within(tv.get(body, "max_rejects", int, 1000, where), "max_rejects", where),
        allow_empty=tv.get(body, "allow_empty", bool, False, where),
        format=CsvFormat(
            delimiter=tv.get(fmt, "delimiter", str, ",", where),
            quote=tv.get(fmt, "quote", str, '"', where),
            header=tv.get(fmt, "header", bool, False, where),
        ),
        serving=_serving(serving, tv.get(body, "table", str, name, where), where)
        if serving
        else None,
    )
    source = tv.get(body, "source", str, "", where)
    if not source:
        raise ConfigError(f"{where}: 'source' is required (a folder, s3:// or gs:// URL)")
    if "://" not in source and not Path(source).is_absolute():
        source = str((root / source).resolve())
    return Feed(
        name=name,
        table=spec,
        source=source,
        pattern=tv.get(body, "pattern", str, r".*\.csv(\.gz)?", where),
        constants=constants,
        schedule=tv.get(body, "schedule", str, schedule.DEFAULT, where),
        ordered=tv.get(body, "ordered", bool, False, where),
        max_active=tv.get(body, "max_active", int, None, where),
    )


def syncs(section: dict[str, Any], where: str) -> dict[str, SyncDeclaration]:
    """``[syncs.NAME]`` tables: a recipe, a schedule, and the recipe's own options (checked by
    the recipe when the sync is registered)."""
    syncs = {}
    for name, body in section.items():
        sync_where = f"{where} [syncs.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{sync_where}: expected a table")
        options = {k: v for k, v in body.items() if k not in {"recipe", "schedule"}}
        recipe = tv.get(body, "recipe", str, "", sync_where)
        if not recipe:
            raise ConfigError(f"{sync_where}: 'recipe' is required (e.g. recipe = \"cryoet\")")
        try:
            syncs[name] = SyncDeclaration(
                name=name,
                recipe=recipe,
                options=options,
                schedule=tv.get(body, "schedule", str, SYNC_SCHEDULE, sync_where),
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


def exports(
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
        tv.only_keys(body, _EXPORT_KEYS, at)
        for key in ("recipe", "type"):
            if not tv.get(body, key, str, "", at):
                raise ConfigError(f"{at}: {key!r} is required")

        def place(key: str, default: Path, at: str = at, body: dict[str, Any] = body) -> Path:
            text = tv.get(body, key, str, "", at)
            return (root / text).resolve() if text else default

        try:
            exports[name] = ExportDeclaration(
                name=name,
                recipe=body["recipe"],
                kind=body["type"],
                out_dir=place("out_dir", state / "export"),
                source=SourceOptions(
                    url=tv.get(body, "source_url", str, "", at) or None,
                    schema=tv.get(body, "source_schema", str, SourceOptions().schema, at),
                ),
                as_string=tv.get(body, "aggregate_as_string", bool, False, at),
                lake_dir=place("lake", state / "lake"),
                warehouse=place("warehouse", state / "warehouse.duckdb"),
                start=_day(body, "start", at),
                end=_day(body, "end", at),
                schedule=tv.get(body, "schedule", str, EXPORT_SCHEDULE, at),
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
    return tv.table(body, "serving", where)


def _serving(body: dict[str, Any], table: str, where: str) -> ServingView:
    tv.only_keys(body, {"view", "kind", "indexes", "unique"}, f"{where} serving")
    unique = tuple(tv.words(body, "unique", where) or ["id"])
    indexes = [Index(columns=unique, unique=True)]
    indexes += [Index(columns=(c,)) for c in tv.words(body, "indexes", where)]
    kind = tv.get(body, "kind", str, "incremental", where)
    if kind not in SERVING_KINDS:
        raise ConfigError(
            f"{where}: serving kind must be one of {', '.join(SERVING_KINDS)}, got {kind!r}"
        )
    return ServingView(
        name=tv.get(body, "view", str, f"view_{table}", where),
        indexes=tuple(indexes),
        kind=kind,
    )
