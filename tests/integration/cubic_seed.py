"""Helpers of the Cubic routing tests: the sample Incoming bucket, settings, lake reads."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from sluice.api import Engine
from sluice.config import Settings
from sluice.recipes.cubic.options import CubicOptions, TableDeclaration

SAMPLE = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
ODS = "cubic_ods_qlik__edw_sample"
DMAP = "cubic_dmap__agg_sample"
ODS_PREFIX = "cubic/ods_qlik/EDW.SAMPLE/"
CT_PREFIX = "cubic/ods_qlik/EDW.SAMPLE__ct/"
DMAP_PREFIX = "cubic/dmap/agg_sample/"


def seed(incoming: Path) -> None:
    """Copy the sample files (ODS LOAD1/LOAD2 + two ``__ct`` files with ``.dfm``, two DMAP
    days) into `incoming`, writable."""
    target = incoming / "cubic"
    shutil.copytree(SAMPLE, target, dirs_exist_ok=True)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def declarations(
    *, typed: bool = True, snapshot_key: str = "LOAD1.csv.gz"
) -> dict[str, TableDeclaration]:
    return {
        ODS: TableDeclaration(ODS, ODS_PREFIX, snapshot_key=snapshot_key, raw=not typed),
        DMAP: TableDeclaration(DMAP, DMAP_PREFIX, kind="dmap"),
    }


def cubic_settings(
    settings: Settings,
    root: Path,
    tables: dict[str, TableDeclaration] | None = None,
    **more: Any,
) -> Settings:
    options = CubicOptions(
        incoming=more.pop("incoming", str(root / "incoming")),
        archive=more.pop("archive", str(root / "archive")),
        error=more.pop("error", str(root / "error")),
        lake=more.pop("lake", str(root / "lake")),
        tables=declarations() if tables is None else tables,
        **more,
    )
    return replace(settings, cubic=options)


def run_once(engine: Engine) -> Any:
    return engine.serve(threading.Event(), once=True)


def files(folder: Path) -> list[str]:
    """Every file below `folder`, relative, sorted."""
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def lake_rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    rows = engine.cubic_flow.lake.read(table).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def duck_rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    """The table's rows as DuckDB reads them: the live files pyiceberg's scan plans."""
    paths = [p.removeprefix("file://") for p in engine.cubic_flow.lake.live_files(table)]
    with duckdb.connect() as con:
        result = con.execute("SELECT * FROM read_parquet(?)", [paths])
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def loads(engine: Engine) -> list[dict[str, Any]]:
    from sluice.recipes.cubic import api

    return api.loads(engine)


def by_key(engine: Engine) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in loads(engine)}


def write_gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))


def dfm_with(source: Path, target: Path, *, start: datetime | None = None) -> None:
    """A copy of the ``.dfm`` `source` at `target`, its startWriteTimestamp set to `start`."""
    doc = json.loads(source.read_text())
    if start is not None:
        doc["fileInfo"]["startWriteTimestamp"] = start.strftime("%Y-%m-%dT%H:%M:%S.%f")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc))
