"""Serving kinds in declarations: the project file's ``serving`` setting, the GLAM recipe, and
declarations registered before kinds existed."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from sluice.config import Settings, load_settings
from sluice.errors import ConfigError
from sluice.load.spec import Column, Index, ServingView, TableSpec
from sluice.recipes.glam.tables import table_spec

FEED = """\
[feeds.sales]
source = "in"
columns = ["sku text not null", "qty integer"]
key = ["sku"]
"""


def load(folder: Path, text: str) -> Settings:
    path = folder / "sluice.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, {})


def test_serving_is_incremental_by_default(tmp_path: Path) -> None:
    feed = load(tmp_path, FEED + 'serving = { view = "view_sales" }\n').feeds["sales"]
    assert feed.table.serving == ServingView(
        "view_sales", (Index(("id",), unique=True),), kind="incremental"
    )


@pytest.mark.parametrize("kind", ["incremental", "matview"])
def test_serving_as_a_word_names_the_copy_after_the_table(tmp_path: Path, kind: str) -> None:
    feed = load(tmp_path, FEED + f'serving = "{kind}"\n').feeds["sales"]
    assert feed.table.serving == ServingView(
        "view_sales",
        (Index(("id",), unique=True),),
        kind=kind,  # type: ignore[arg-type]
    )


def test_serving_kind_in_the_table_form(tmp_path: Path) -> None:
    text = FEED + 'serving = { view = "v", kind = "matview", indexes = ["qty"] }\n'
    serving = load(tmp_path, text).feeds["sales"].table.serving
    assert serving is not None
    assert (serving.name, serving.kind) == ("v", "matview")
    assert Index(("qty",)) in serving.indexes


@pytest.mark.parametrize("text", ['serving = "snapshot"', 'serving = { kind = "view" }'])
def test_an_unknown_serving_kind_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="serving kind must be one of incremental, matview"):
        load(tmp_path, FEED + text + "\n")


def test_an_incremental_copy_needs_the_surrogate_key() -> None:
    with pytest.raises(ConfigError, match="surrogate key"):
        TableSpec(
            name="t",
            columns=(Column("a", "text"),),
            mode="append",
            surrogate=None,
            serving=ServingView("view_t"),
        )


def test_a_declaration_registered_before_serving_kinds_was_a_view() -> None:
    declared = asdict(table_spec("desktop", "nightly"))
    del declared["serving"]["kind"]
    spec = TableSpec.from_declaration(declared)
    assert spec.serving is not None and spec.serving.kind == "matview"
    assert TableSpec.from_declaration(asdict(table_spec("desktop", "nightly"))) == table_spec(
        "desktop", "nightly"
    )


def test_the_glam_recipe_declares_either_kind() -> None:
    for kind in ("incremental", "matview"):
        spec = table_spec("fenix", "beta", kind)  # type: ignore[arg-type]
        assert spec.serving is not None and spec.serving.kind == kind
        assert spec.to_json()["serving"] == kind


def test_a_serving_copy_round_trips() -> None:
    spec = table_spec("desktop", "nightly")
    assert TableSpec.from_declaration(spec.declaration()) == spec
