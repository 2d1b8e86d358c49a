"""The Cubic recipe's declarations: names, key layouts, the ``[cubic]`` settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import sluice.lake
import sluice.recipes.cubic
import sluice.route
from sluice.config import load_settings
from sluice.errors import ConfigError
from sluice.recipes.cubic import (
    CUBIC_LAYOUT,
    TableDeclaration,
    archive_key,
    default_name,
    error_key,
    lake_table,
    stamp,
)
from sluice.route.moves import beside

ODS = TableDeclaration("cubic_ods_qlik__edw_sample", "cubic/ods_qlik/EDW.SAMPLE/")
TYPED = TableDeclaration("cubic_ods_qlik__edw_sample", "cubic/ods_qlik/EDW.SAMPLE/", raw=False)
DMAP = TableDeclaration("cubic_dmap__agg_sample", "cubic/dmap/agg_sample/", kind="dmap")
WHEN = datetime(2022, 1, 1, 20, 49, 50, 123456, tzinfo=UTC)


def test_public_names_are_pinned() -> None:
    assert sluice.recipes.cubic.__all__ == [
        "CUBIC_LAYOUT",
        "CubicOptions",
        "TableDeclaration",
        "archive_key",
        "default_name",
        "error_key",
        "is_change_key",
        "lake_table",
        "stamp",
    ]
    assert sluice.lake.__all__ == ["Lake", "LakeOptions", "TableInfo", "postgres_catalog"]
    assert sluice.route.__all__ == [
        "ARCHIVE",
        "ERROR",
        "INGEST",
        "KIND",
        "Layout",
        "RouteFlow",
        "RouteOptions",
    ]


def test_table_names_follow_the_seed() -> None:
    assert default_name("cubic/ods_qlik/EDW.SAMPLE/") == "cubic_ods_qlik__edw_sample"
    assert default_name("cubic/dmap/agg_sample/") == "cubic_dmap__agg_sample"
    key = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz"
    ct = "cubic/ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz"
    assert lake_table(ODS, key) == "raw_cubic_ods_qlik__edw_sample"
    assert lake_table(ODS, ct) == "raw_cubic_ods_qlik__edw_sample__ct"
    assert lake_table(TYPED, ct) == "cubic_ods_qlik__edw_sample__ct"
    assert lake_table(DMAP, "cubic/dmap/agg_sample/x.csv.gz") == "raw_cubic_dmap__agg_sample"
    assert CUBIC_LAYOUT.prefixes(ODS) == [
        "cubic/ods_qlik/EDW.SAMPLE/",
        "cubic/ods_qlik/EDW.SAMPLE__ct/",
    ]
    assert CUBIC_LAYOUT.prefixes(DMAP) == ["cubic/dmap/agg_sample/"]


def test_archive_and_error_keys() -> None:
    assert stamp(WHEN) == "20220101T204950Z"
    key = "cubic/ods_qlik/SAMPLE/LOAD1.csv.gz"
    assert (
        archive_key(ODS, key, WHEN)
        == "cubic/ods_qlik/SAMPLE/snapshot=20220101T204950Z/LOAD1.csv.gz"
    )
    assert (
        error_key(ODS, key, WHEN) == "cubic/ods_qlik/SAMPLE/timestamp=20220101T204950Z/LOAD1.csv.gz"
    )
    dmap = "cubic/dmap/agg_sample/agg_sample_20220517.csv.gz"
    assert archive_key(DMAP, dmap, WHEN) == dmap
    assert error_key(DMAP, dmap, WHEN) == (
        "cubic/dmap/agg_sample/timestamp=20220101T204950Z/agg_sample_20220517.csv.gz"
    )
    kept = beside("cubic/dmap/agg_sample/a.csv.gz", '"etag-2"')
    assert kept.startswith("cubic/dmap/agg_sample/a.") and kept.endswith(".csv.gz")
    assert kept != beside("cubic/dmap/agg_sample/a.csv.gz", '"etag-3"')


@pytest.mark.parametrize(
    ("prefix", "kind", "message"),
    [
        ("cubic/ods_qlik/EDW.X", "ods", "must be relative to Incoming and end with '/'"),
        ("/cubic/ods_qlik/EDW.X/", "ods", "must be relative to Incoming"),
        ("cubic/ods_qlik/EDW.X__ct/", "ods", "not its __ct sibling"),
        ("cubic/x/", "kafka", "kind 'kafka' is not one of ods, dmap, stream"),
    ],
)
def test_bad_declarations_are_refused(prefix: str, kind: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TableDeclaration("t", prefix, kind=kind)


def test_the_cubic_section_and_its_environment(tmp_path: Path) -> None:
    project = tmp_path / "sluice.toml"
    project.write_text(
        """
[cubic]
incoming = "s3://in-bucket/incoming"
archive = "archive"
endpoint_url = "http://127.0.0.1:9000"

[cubic.tables.cubic_dmap__agg_sample]
prefix = "cubic/dmap/agg_sample/"
kind = "dmap"

[cubic.dmap]
schedule = "1d"
"""
    )
    cubic = load_settings(project, environ={}).cubic
    assert cubic.incoming == "s3://in-bucket/incoming"
    assert cubic.archive == str(tmp_path / "archive")
    assert cubic.error == str(tmp_path / ".sluice" / "cubic" / "error")
    assert cubic.lake == str(tmp_path / ".sluice" / "cubic" / "lake")
    assert cubic.endpoint_url == "http://127.0.0.1:9000"
    assert cubic.tables == {
        "cubic_dmap__agg_sample": TableDeclaration(
            "cubic_dmap__agg_sample", "cubic/dmap/agg_sample/", kind="dmap"
        )
    }
    env = {
        "SLUICE_CUBIC_INCOMING": "s3://other/in",
        "SLUICE_CUBIC_ARCHIVE": "s3://other/archive",
        "SLUICE_CUBIC_ERROR": "s3://other/error",
        "SLUICE_CUBIC_LAKE": "s3://other/lake",
    }
    again = load_settings(project, environ=env).cubic
    assert (again.incoming, again.archive, again.error, again.lake) == tuple(env.values())


def test_unknown_cubic_settings_are_refused(tmp_path: Path) -> None:
    project = tmp_path / "sluice.toml"
    project.write_text('[cubic]\nincomng = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'incomng'"):
        load_settings(project, environ={})
    project.write_text('[cubic.tables.t]\nprefix = "a/"\nraw = "yes"\nextra = 1\n')
    with pytest.raises(ConfigError, match=r"\[cubic.tables.t\]: unknown setting 'extra'"):
        load_settings(project, environ={})


def test_the_engine_knows_the_kind_of_routed_units() -> None:
    from sluice import api
    from sluice.route.options import KIND

    assert api.ROUTED == KIND
