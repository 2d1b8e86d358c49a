"""Hostile metadata in a CryoET bucket: two generated datasets, the first one made hostile. Each
case must fail the hostile dataset alone, with a message naming the object, the entity and
column where there is one, and why; the other dataset must import every one of its rows. Then
the same for every declared column type, on a small tree of boxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sluice.sync.walk as sync_walk
from sluice.api import Engine
from sluice.recipes.cryoet.api import load
from sluice.recipes.cryoet.generate import generate_tree
from sluice.store import locate
from sluice.sync import BucketView, Entity, Field, Item, Pass, ScopeReport, Syncer, Tree
from sluice.sync.finders import Elements, Subfolders, dig

HOSTILE, GOOD = 91001, 91002  # the hostile dataset is synced first: it must not stop the other
RUNS = 2
RUN = f"{HOSTILE}/RUN0000/"
TILTSERIES = RUN + "TiltSeries/100/tiltseries_metadata.json"
ALIGNMENT = RUN + "Alignments/100/alignment_metadata.json"
TOMOGRAM = RUN + "Reconstructions/VoxelSpacing10.000/Tomograms/100/tomogram_metadata.json"
ANNOTATION = RUN + "Reconstructions/VoxelSpacing10.000/Annotations/100/object0-1.0.json"

#: The rows one generated dataset of RUNS runs gives, with its deposition.
ROWS_OF_ONE_DATASET = {
    "deposition": 1,
    "deposition_author": 1,
    "deposition_type": 3,
    "dataset": 1,
    "dataset_author": 1,
    "dataset_funding": 1,
    "run": RUNS,
    "tiltseries": RUNS,
    "per_section_parameters": 3 * RUNS,
    "alignment": RUNS,
    "per_section_alignment_parameters": 3 * RUNS,
    "tomogram_voxel_spacing": 2 * RUNS,
    "tomogram": 2 * RUNS,
    "tomogram_author": 2 * RUNS,
    "annotation": 5 * RUNS,
    "annotation_shape": 10 * RUNS,
    "annotation_file": 10 * RUNS,
    "annotation_author": 5 * RUNS,
    "annotation_method_link": 5 * RUNS,
}


@dataclass(frozen=True)
class Hostile:
    """A document of the hostile dataset rewritten, and what its scope's error must say."""

    key: str
    rewrite: Callable[[bytes], bytes]
    says: tuple[str, ...]


def edit(change: Callable[[dict[str, Any]], object]) -> Callable[[bytes], bytes]:
    """A rewrite that changes the parsed document in place and writes it back."""

    def rewrite(raw: bytes) -> bytes:
        document = json.loads(raw)
        change(document)
        return json.dumps(document).encode()

    return rewrite


def put(value: object, *path: str | int) -> Callable[[dict[str, Any]], object]:
    def change(document: Any) -> None:
        for step in path[:-1]:
            document = document[step]
        document[path[-1]] = value

    return change


def raw_number(field: str, digits: str) -> Callable[[bytes], bytes]:
    """Sets `field` to a number written as `digits` (json.dumps cannot write some of them)."""

    def rewrite(raw: bytes) -> bytes:
        document = json.loads(raw)
        document[field] = "@number@"
        return json.dumps(document).replace('"@number@"', digits).encode()

    return rewrite


def constant(data: bytes) -> Callable[[bytes], bytes]:
    return lambda _raw: data


DEEP = 100_000
CASES = {
    "arrays nested 100000 deep": Hostile(
        RUN + "run_metadata.json",
        constant(b"[" * DEEP),
        (RUN + "run_metadata.json: ", "is nested deeper than 512 levels"),
    ),
    "objects nested 100000 deep, well formed": Hostile(
        TOMOGRAM,
        constant(b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        (TOMOGRAM + ": ", "is nested deeper than 512 levels"),
    ),
    "a deep value inside a valid dataset document": Hostile(
        f"{HOSTILE}/dataset_metadata.json",
        edit(lambda d: d.update(extra=json.loads("[" * 600 + "]" * 600))),
        (f"{HOSTILE}/dataset_metadata.json: ", "is nested deeper than 512 levels"),
    ),
    "an integer of 5000 digits": Hostile(
        TILTSERIES,
        raw_number("tilt_series_quality", "9" * 5000),
        (TILTSERIES + ": ", "has an integer of 5000 digits"),
    ),
    "bytes that are not UTF-8": Hostile(
        RUN + "run_metadata.json",
        constant(b'{"run_name": "RUN\xff"}'),
        (RUN + "run_metadata.json: ", "is not UTF-8 text"),
    ),
    "1e30 in an integer column": Hostile(
        TILTSERIES,
        raw_number("tilt_series_quality", "1e30"),
        (TILTSERIES + ": tiltseries.tilt_series_quality: 1e+30 is out of range for integer",),
    ),
    "a 20-digit integer in an integer column": Hostile(
        TOMOGRAM,
        edit(put(12345678901234567890, "size", "x")),
        (TOMOGRAM + ": tomogram.size_x: 12345678901234567890 is out of range for integer",),
    ),
    "a 20-digit dataset id (bigint)": Hostile(
        f"{HOSTILE}/dataset_metadata.json",
        edit(put(12345678901234567890, "dataset_identifier")),
        (
            f"{HOSTILE}/dataset_metadata.json: dataset.id: 12345678901234567890 is out of "
            "range for bigint",
        ),
    ),
    "a 20-digit deposition reference (bigint)": Hostile(
        ALIGNMENT,
        edit(put(12345678901234567890, "deposition_id")),
        (
            "deposition 12345678901234567890 (named by ",
            ALIGNMENT + ") is not in the database",
        ),
    ),
    "Infinity in an integer column": Hostile(
        TOMOGRAM,
        raw_number("offset", '{"x": Infinity, "y": 0, "z": 0}'),
        (TOMOGRAM + ": tomogram.offset_x: inf is out of range for integer",),
    ),
    "a NUL character in a text column": Hostile(
        f"{HOSTILE}/dataset_metadata.json",
        edit(put("Generated\u0000dataset", "dataset_title")),
        (
            f"{HOSTILE}/dataset_metadata.json: dataset.title: the string contains a NUL character",
            "which PostgreSQL text cannot store",
        ),
    ),
    "a NUL character in a list element's text": Hostile(
        f"{HOSTILE}/dataset_metadata.json",
        edit(put("Grace\u0000Hopper", "authors", 0, "name")),
        (
            f"{HOSTILE}/dataset_metadata.json: dataset_author.name: the string contains a NUL "
            "character",
        ),
    ),
    "a NUL character nested in a JSON value": Hostile(
        ALIGNMENT,
        edit(put([["x", "y\u0000"]], "per_section_alignment_parameters", 0, "in_plane_rotation")),
        (
            ALIGNMENT + ": per_section_alignment_parameters.in_plane_rotation: the string "
            "contains a NUL character",
        ),
    ),
    "a lone surrogate in a text column": Hostile(
        TOMOGRAM,
        raw_number("processing_software", '"IMOD \\ud800"'),
        (TOMOGRAM + ": tomogram.processing_software: the string contains a lone surrogate",),
    ),
    "a value a getter refuses": Hostile(
        TOMOGRAM,
        edit(put("maybe", "fiducial_alignment_status")),
        (
            TOMOGRAM + ": tomogram.fiducial_alignment_status: 'maybe' is neither true/false nor "
            "FIDUCIAL/NON_FIDUCIAL",
        ),
    ),
    "text where a list is expected": Hostile(
        f"{HOSTILE}/dataset_metadata.json",
        edit(put("Grace Hopper", "authors")),
        (f"{HOSTILE}/dataset_metadata.json: authors should be a list, found str",),
    ),
    "a list where a getter expects objects": Hostile(
        TOMOGRAM,
        edit(put([1, 2, 3], "scales")),
        (TOMOGRAM + ": tomogram.scale0_dimensions: cannot be computed from the metadata",),
    ),
    "a list where a finder expects a name": Hostile(
        ANNOTATION,
        edit(put(["Point"], "files", 0, "shape")),
        (ANNOTATION + ": annotation_shape: cannot find its items",),
    ),
}


def two_datasets(root: Path) -> Path:
    bucket = root / "bucket"
    generate_tree(str(bucket), runs=RUNS, dataset=HOSTILE, deposition=9101)
    generate_tree(str(bucket), runs=RUNS, dataset=GOOD, deposition=9102)
    return bucket


def table_counts(db: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in ROWS_OF_ONE_DATASET:
        row = db.execute(f"SELECT count(*) FROM cryoet.{table}").fetchone()
        assert row is not None
        counts[table] = int(row[0])
    return counts


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_hostile_metadata_fails_only_its_dataset(
    engine: Engine, tmp_path: Path, db: psycopg.Connection[Any], case: Hostile
) -> None:
    bucket = two_datasets(tmp_path)
    document = bucket / case.key
    document.write_bytes(case.rewrite(document.read_bytes()))

    report = load(engine, str(bucket), "https://x", everything=True)

    scopes = {scope.name: scope for scope in report.scopes}
    assert list(scopes) == [f"dataset {HOSTILE}", f"dataset {GOOD}"]
    assert scopes[f"dataset {GOOD}"].ok, scopes[f"dataset {GOOD}"].error
    hostile = scopes[f"dataset {HOSTILE}"]
    assert not hostile.ok
    error = hostile.error or ""
    assert error.startswith((bucket.as_uri(), "deposition ")), error
    for fragment in case.says:
        assert fragment in error, error
    assert len(error) < 600, error  # the reason, not a dump of the document
    assert table_counts(db) == ROWS_OF_ONE_DATASET
    assert db.execute("SELECT id FROM cryoet.dataset").fetchall() == [(GOOD,)]


def test_the_failed_run_records_the_reason(engine: Engine, tmp_path: Path) -> None:
    bucket = two_datasets(tmp_path)
    (bucket / RUN / "run_metadata.json").write_bytes(b"[" * DEEP)

    report = load(engine, str(bucket), "https://x", everything=True)

    assert [scope.ok for scope in report.scopes] == [False, True]
    run = engine.status().runs[0]
    assert (run.status, run.loaded, run.errored) == ("failed", 1, 1)
    assert run.error is not None
    assert run.error.startswith(f"dataset {HOSTILE}: {bucket.as_uri()}/{RUN}run_metadata.json")
    assert "nested deeper than 512 levels" in run.error


# -- every declared type, on a small tree of its own --------------------------------------------

KINDS = Tree(
    schema="kinds",
    entities=(
        Entity(
            name="box",
            table="box",
            identity=lambda item: dig(item.data, "id"),
            key=(),
            find=Subfolders("box.json"),
            delete_stale=False,
            fields=(
                Field("small", "smallint", lambda item: dig(item.data, "small")),
                Field("big", "bigint", lambda item: dig(item.data, "big")),
                Field("ratio", "real", lambda item: dig(item.data, "ratio")),
                Field("price", "numeric(5,2)", lambda item: dig(item.data, "price")),
                Field("label", "varchar(5)", lambda item: dig(item.data, "label")),
            ),
        ),
        Entity(
            name="note",
            table="note",
            parent="box",
            scope="box_id",
            key=("box_id", "position"),
            find=Elements("notes"),
            fields=(
                Field("box_id", "bigint", nullable=False),
                Field("position", "integer", lambda item: item.index),
                Field("body", "jsonb", lambda item: item.data),
            ),
        ),
    ),
)
GOOD_BOX = {
    "id": 2,
    "small": -32768,
    "big": 2**63 - 1,
    "ratio": 0.5,
    "price": 12.345,
    "label": "short",
    "notes": [{"text": "fine", "n": [1, 2.5, None]}, "plain"],
}
BOX_CASES = {
    "smallint": ({"small": 40000}, "box.small: 40000 is out of range for smallint"),
    "bigint": ({"big": -(2**63) - 1}, "box.big: -9223372036854775809 is out of range for bigint"),
    "real": ({"ratio": 1e39}, "box.ratio: 1e+39 is out of range for real"),
    "numeric": ({"price": 1000}, "box.price: 1000 is out of range for numeric(5,2)"),
    "numeric infinity": (
        {"price": float("inf")},
        "box.price: inf is out of range for numeric(5,2)",
    ),
    "varchar": (
        {"label": "too long"},
        "box.label: 'too long' is 8 characters, too long for character varying(5)",
    ),
    "jsonb NaN": (
        {"notes": [{"x": float("nan")}]},
        "note.body: {'x': nan} holds NaN or Infinity, which jsonb cannot store",
    ),
    "jsonb NUL": (
        {"notes": [{"deep": [{"k": "a\u0000"}]}]},
        "note.body: the string contains a NUL character",
    ),
}


def sync_boxes(engine: Engine, root: Path) -> list[ScopeReport]:
    store, _ = locate(str(root))
    view = BucketView(store, "boxes", "https://x")
    syncer = Syncer(engine.db, KINDS, view, enabled={"box", "note"})
    syncer.ensure_schema()
    view.list_prefix("")
    return [
        syncer.scope(f"box {folder}", [Pass("box", [Item(folder, view.json(folder + "box.json"))])])
        for folder in view.folders("")
    ]


@pytest.mark.parametrize(("change", "says"), BOX_CASES.values(), ids=list(BOX_CASES))
def test_values_out_of_their_columns_range_fail_their_scope(
    engine: Engine, tmp_path: Path, db: psycopg.Connection[Any], change: dict[str, Any], says: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "box.json").write_text(json.dumps({**GOOD_BOX, "id": 1, **change}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "box.json").write_text(json.dumps(GOOD_BOX))

    hostile, good = sync_boxes(engine, tmp_path)

    assert not hostile.ok
    assert (hostile.error or "").startswith(f"{tmp_path.as_uri()}/a/box.json: {says}"), (
        hostile.error
    )
    assert good.ok, good.error
    assert db.execute("SELECT id, small, big, ratio, price, label FROM kinds.box").fetchall() == [
        (2, -32768, 2**63 - 1, 0.5, Decimal("12.35"), "short")
    ]
    assert db.execute("SELECT body FROM kinds.note ORDER BY position").fetchall() == [
        ({"text": "fine", "n": [1, 2.5, None]},),
        ("plain",),
    ]
    # values are compared as PostgreSQL returns them (12.345 is stored as 12.35, JSON parsed)
    again = sync_boxes(engine, tmp_path)[1]
    assert (again.entities["box"].unchanged, again.entities["note"].unchanged) == (1, 2)


def test_an_unexpected_error_fails_its_scope_alone(
    engine: Engine, tmp_path: Path, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder, box_id in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "box.json").write_text(json.dumps({**GOOD_BOX, "id": box_id}))
    diff = sync_walk._diff
    calls: list[str] = []

    def fails_once(entity: Entity, *args: Any) -> Any:
        calls.append(entity.name)
        if len(calls) == 1:
            raise RuntimeError("a defect")
        return diff(entity, *args)

    monkeypatch.setattr(sync_walk, "_diff", fails_once)
    first, second = sync_boxes(engine, tmp_path)

    assert (first.ok, first.error) == (False, "unexpected RuntimeError: a defect")
    assert second.ok, second.error
    assert db.execute("SELECT id FROM kinds.box").fetchall() == [(2,)]
