"""CryoET sync beyond the reference files: generated trees (statements and listing requests that
do not grow with the number of directories), failure isolation between datasets, identified
objects, a fixed CLI flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from sluice.api import Engine
from sluice.config import S3Options
from sluice.recipes.cryoet.api import load, resolve_flags
from sluice.recipes.cryoet.generate import generate_tree
from tests.integration.test_cryoet_import import reference_files


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_statements_and_listings_do_not_grow_with_runs(
    engine: Engine, tmp_path: Path, where: str, s3_bucket: str, s3_options: S3Options
) -> None:
    results = {}
    for runs in (5, 40):
        out = str(tmp_path / f"bucket{runs}") if where == "folder" else f"s3://{s3_bucket}"
        dataset = 90000 + runs
        generate_tree(out, runs=runs, dataset=dataset, deposition=9000 + runs, s3=s3_options)
        bucket = out if where == "folder" else s3_bucket
        prefix = str(dataset)
        first = load(
            engine,
            bucket,
            "https://x",
            s3_prefix=prefix,
            everything=True,
            endpoint_url=s3_options.endpoint_url if where == "s3" else None,
        )
        again = load(
            engine,
            bucket,
            "https://x",
            s3_prefix=prefix,
            everything=True,
            full=True,
            endpoint_url=s3_options.endpoint_url if where == "s3" else None,
        )
        assert first.ok and again.ok, [s.error for s in first.scopes + again.scopes]
        assert first.totals()["annotation_file"].created == runs * 10
        assert not again.changed
        results[runs] = (first, again)

    small, large = results[5], results[40]
    # the same SQL for 5 runs and for 40: one read per entity type, one write per kind
    assert small[0].statements == large[0].statements
    assert small[1].statements == large[1].statements
    # one listing of the dataset (plus its deposition's); documents read once each
    assert large[1].requests["lists"] == small[1].requests["lists"] <= 2
    assert large[1].requests["gets"] == 1 + 40 * 10  # dataset, then 10 documents per run


def test_a_failing_dataset_is_rolled_back_and_the_others_import(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate_tree(str(bucket), runs=3, dataset=91001, deposition=9101)
    generate_tree(str(bucket), runs=3, dataset=91002, deposition=9102)
    (bucket / "91002" / "RUN0001" / "run_metadata.json").write_text("{broken")

    report = load(engine, str(bucket), "https://x", s3_prefix="", everything=True)

    assert not report.ok
    by_name = {s.name: s for s in report.scopes}
    assert by_name["dataset 91001"].ok
    assert not by_name["dataset 91002"].ok
    assert "91002/RUN0001/run_metadata.json: is not valid JSON" in (
        by_name["dataset 91002"].error or ""
    )
    datasets = db.execute("SELECT id FROM cryoet.dataset ORDER BY id").fetchall()
    assert datasets == [(91001,)]
    assert db.execute("SELECT count(*) FROM cryoet.run").fetchone() == (3,)


def test_identified_objects_import_on_their_own(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    folder = tmp_path / "test-public-bucket"
    shutil.copytree(reference_files(), folder)
    objects = folder / "30001" / "RUN1" / "IdentifiedObjects" / "identified_objects.json"
    objects.parent.mkdir()
    objects.write_text(
        json.dumps(
            [
                {"object_id": "GO:0005840", "object_name": "ribosome", "object_state": None},
                {
                    "object_id": "GO:0005739",
                    "object_name": "mitochondrion",
                    "object_description": "an organelle",
                },
            ]
        )
    )

    report = load(
        engine, str(folder), "https://foo.com", s3_prefix="30001", flags=["identified_objects"]
    )

    assert report.ok, [s.error for s in report.scopes]
    found = db.execute(
        "SELECT r.name, o.object_id, o.object_name, o.object_description FROM "
        "cryoet.identified_object o JOIN cryoet.run r ON r.id = o.run_id ORDER BY o.object_id"
    ).fetchall()
    assert found == [
        ("RUN1", "GO:0005739", "mitochondrion", "an organelle"),
        ("RUN1", "GO:0005840", "ribosome", None),
    ]
    # a re-run with one object removed deletes it, and only it
    objects.write_text(json.dumps([{"object_id": "GO:0005840", "object_name": "ribosome"}]))
    again = load(
        engine, str(folder), "https://foo.com", s3_prefix="30001", flags=["identified_objects"]
    )
    counts = again.totals()["identified_object"]
    assert (counts.deleted, counts.unchanged) == (1, 1)


def test_flag_implications() -> None:
    assert resolve_flags(["identified_objects"]) == {"identified_objects", "runs"}
    assert resolve_flags(["annotation_authors"]) == {
        "annotation_authors",
        "annotations",
        "tomogram_voxel_spacing",
        "runs",
    }
    assert resolve_flags(["alignments"]) == {"alignments", "tiltseries", "runs"}
    assert resolve_flags(["frames"]) == {"frames", "frame_acquisition_files", "runs"}
    assert resolve_flags([]) == frozenset()
    assert len(resolve_flags([], everything=True)) == 16
