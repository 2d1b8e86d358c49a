"""``[exports.NAME]`` in the project file: parsed into export declarations, paths resolved,
bad values named with their section; a declaration survives the ledger's options."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sluice.config import load_settings
from sluice.errors import ConfigError
from sluice.export.options import ExportDeclaration, SourceOptions


def settings_of(tmp_path: Path, text: str) -> dict[str, ExportDeclaration]:
    project = tmp_path / "sluice.toml"
    project.write_text(text, encoding="utf-8")
    return dict(load_settings(project, environ={}).exports)


def test_full_declaration(tmp_path: Path) -> None:
    exports = settings_of(
        tmp_path,
        """
[project]
state_dir = "state"

[exports.moz]
recipe = "mozagg"
type = "build_id"
start = 2019-12-01
end = "2019-12-05"
source_url = "postgresql://reader@db.example/moz"
source_schema = "aggregates"
out_dir = "out"
lake = "/data/lake"
aggregate_as_string = true
schedule = "6h"
""",
    )
    moz = exports["moz"]
    assert moz == ExportDeclaration(
        name="moz",
        recipe="mozagg",
        kind="build_id",
        out_dir=(tmp_path / "out").resolve(),
        source=SourceOptions("postgresql://reader@db.example/moz", "aggregates"),
        as_string=True,
        lake_dir=Path("/data/lake"),
        warehouse=(tmp_path / "state" / "warehouse.duckdb").resolve(),
        start=date(2019, 12, 1),
        end=date(2019, 12, 5),
        schedule="6h",
    )
    again = ExportDeclaration.from_options("moz", moz.options(), "6h")
    assert again == moz


def test_defaults_under_the_state_directory(tmp_path: Path) -> None:
    (moz,) = settings_of(
        tmp_path, '[project]\nstate_dir = "s"\n[exports.m]\nrecipe = "mozagg"\ntype = "x"\n'
    ).values()
    state = (tmp_path / "s").resolve()
    assert (moz.out_dir, moz.lake_dir, moz.warehouse) == (
        state / "export",
        state / "lake",
        state / "warehouse.duckdb",
    )
    assert (moz.start, moz.end, moz.schedule, moz.source) == (None, None, "1d", SourceOptions())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('type = "x"', r"\[exports.m\]: 'recipe' is required"),
        ('recipe = "mozagg"', r"\[exports.m\]: 'type' is required"),
        ('recipe = "m"\ntype = "x"\nstart = "2019-13-01"', r"start must be a day \(YYYY-MM-DD\)"),
        ('recipe = "m"\ntype = "x"\nstart = 2019-12-02\nend = 2019-12-01', "is not after start"),
        ('recipe = "m"\ntype = "x"\nschedule = "often"', r"\[exports.m\]: export 'm': schedule"),
        ('recipe = "m"\ntype = "x"\nlakes = "l"', r"\[exports.m\].*lakes"),
    ],
)
def test_bad_declarations(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_of(tmp_path, f"[exports.m]\n{body}\n")
