"""CryoET re-syncs read only what changed: an unchanged dataset is not read at all, a changed one
only in the runs that changed; the database is exactly the one a full read gives, over rounds of
random edits of the tree; documents are fetched several at a time, and a bad one still fails
its dataset with a clear message."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sluice.api import Engine, open_engine
from sluice.config import S3Options, Settings
from sluice.recipes.cryoet.api import load
from sluice.recipes.cryoet.generate import generate_tree
from sluice.store import Store
from sluice.sync import SyncReport
from tests.fixtures.fix_db import fresh_database
from tests.integration.test_cryoet_import import _dump as dump
from tests.integration.test_cryoet_import import reference_files, row_versions

DOCUMENTS_PER_RUN = 10  # run, tilt series, alignment, 2 tomograms, 5 annotations


def sync(engine: Engine, bucket: str, **options: Any) -> SyncReport:
    report = load(engine, bucket, "https://foo.com", everything=True, **options)
    assert report.ok, [s.error for s in report.scopes]
    return report


def changes(report: SyncReport) -> dict[str, tuple[int, int, int]]:
    return {
        name: (c.created, c.updated, c.deleted) for name, c in report.totals().items() if c.changed
    }


@pytest.mark.parametrize("s3_prefix", ["", "90001"])
def test_a_re_run_reads_only_the_runs_that_changed(
    engine: Engine, s3_bucket: str, s3_options: S3Options, s3_prefix: str
) -> None:
    out = f"s3://{s3_bucket}"
    generate_tree(out, runs=20, s3=s3_options)
    # With a dataset folder named, a first sync fetches documents while it lists: each must
    # still be recorded with its listed version, or the re-runs would read it again.
    endpoint = {"endpoint_url": s3_options.endpoint_url, "s3_prefix": s3_prefix}
    first = sync(engine, s3_bucket, **endpoint)
    assert first.requests["gets"] == 1 + 1 + 20 * DOCUMENTS_PER_RUN  # deposition, dataset, runs

    unchanged = sync(engine, s3_bucket, **endpoint)
    assert unchanged.requests["gets"] == 0 and not unchanged.changed
    assert [s.skipped for s in unchanged.scopes] == [True]

    tree = generate_tree(out, runs=20, change=0.1, generation=1, s3=s3_options)
    runs = tree.changed_runs
    assert 0 < runs < 20
    changed = sync(engine, s3_bucket, **endpoint)
    # the dataset document (the dataset is synced again), and the documents of the changed runs
    assert changed.requests["gets"] == 1 + runs * DOCUMENTS_PER_RUN
    [scope] = changed.scopes
    assert (scope.kept, scope.read) == (20 - runs, runs)
    assert changes(changed) == {
        "tomogram": (0, 2 * runs, 0),
        "annotation": (0, 5 * runs, 0),
    }

    full = sync(engine, s3_bucket, full=True, **endpoint)
    assert full.requests["gets"] == 1 + 20 * DOCUMENTS_PER_RUN and not full.changed


def test_the_same_bytes_under_a_new_version_change_nothing(
    engine: Engine, tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "bucket"
    generate_tree(str(folder), runs=5)
    sync(engine, str(folder))
    before = row_versions(database_url, "cryoet")

    # rewritten with the same bytes: the local store's version (an etag of inode, time and
    # size) is new, as a re-upload's would be
    document = folder / "90001" / "RUN0003" / "run_metadata.json"
    document.write_bytes(document.read_bytes())
    os.utime(document, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    report = sync(engine, str(folder))

    assert not report.changed
    assert report.requests["gets"] == 1 + DOCUMENTS_PER_RUN  # the dataset, that run
    assert row_versions(database_url, "cryoet") == before


# -- random edits: incremental equals full --------------------------------------------------


@pytest.fixture
def twin(settings: Settings, server_url: str, template_db: str) -> Iterator[Engine]:
    """A second database, kept beside the test's: it syncs the same trees in full."""
    with (
        fresh_database(server_url, "sluice_full", template_db) as url,
        open_engine(settings=replace(settings, database_url=url)) as opened,
    ):
        yield opened


EDITS = (
    "bump",
    "bump",
    "noise",
    "touch",
    "remove_doc",
    "remove_run",
    "add_run",
    "deposition",
    "grow",
    "add_gain",
    "retitle",
)


class Editor:
    """Random edits of a CryoET tree in a local folder, as a portal's days bring them."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder = folder
        self.dataset = folder / "30001"
        self.rng = rng
        self.serial = 0

    def runs(self) -> list[Path]:
        return sorted(p for p in self.dataset.iterdir() if (p / "run_metadata.json").exists())

    def documents(self) -> list[Path]:
        return sorted(p for p in self.dataset.rglob("*.json") if p.parent != self.dataset)

    def edit(self) -> str:
        kind = self.rng.choice(EDITS)
        getattr(self, kind)()
        return kind

    def _write(self, path: Path, document: Any) -> None:
        path.write_text(json.dumps(document, indent=1))

    def bump(self) -> None:
        """A mapped value changes (a size, a count, an angle step...)."""
        path = self.rng.choice(self.documents())
        document = json.loads(path.read_text())
        self.serial += 1
        if isinstance(document, dict):
            for name in ("object_count", "tilt_step", "acceleration_voltage", "tomogram_version"):
                if isinstance(document.get(name), int | float) and not isinstance(
                    document[name], bool
                ):
                    document[name] = document[name] + self.serial
                    break
            else:
                size = document.get("size")
                if isinstance(size, dict) and isinstance(size.get("x"), int):
                    size["x"] += self.serial
                else:
                    document["unmapped"] = self.serial
        self._write(path, document)

    def noise(self) -> None:
        """New bytes that map to the same rows."""
        path = self.rng.choice(self.documents())
        path.write_text(path.read_text() + "\n" * self.rng.randint(1, 3))

    def touch(self) -> None:
        path = self.rng.choice(self.documents())
        stamp = time.time_ns() + self.rng.randint(1, 10**9) * 1000
        os.utime(path, ns=(stamp, stamp))

    def remove_doc(self) -> None:
        candidates = [p for p in self.documents() if p.name != "run_metadata.json"]
        if candidates:
            self.rng.choice(candidates).unlink()

    def remove_run(self) -> None:
        runs = self.runs()
        if len(runs) > 1:
            shutil.rmtree(self.rng.choice(runs))

    def add_run(self) -> None:
        source = self.rng.choice(self.runs())
        self.serial += 1
        name = f"RUNX{self.serial}"
        target = self.dataset / name
        shutil.copytree(source, target)
        metadata = json.loads((target / "run_metadata.json").read_text())
        metadata["run_name"] = name
        self._write(target / "run_metadata.json", metadata)

    def retitle(self) -> None:
        """A run is renamed in its document: its rows move to a new key."""
        path = self.rng.choice(self.runs()) / "run_metadata.json"
        metadata = json.loads(path.read_text())
        self.serial += 1
        metadata["run_name"] = f"{metadata['run_name']}-{self.serial}"
        self._write(path, metadata)

    def deposition(self) -> None:
        """The dataset moves to the other deposition: every run's rows that depend on it
        change (whether a tomogram or an annotation came with the dataset)."""
        path = self.dataset / "dataset_metadata.json"
        metadata = json.loads(path.read_text())
        metadata["deposition_id"] = 301 if metadata.get("deposition_id") == 300 else 300
        self._write(path, metadata)

    def grow(self) -> None:
        """A data file (not a document) grows: sizes summed below folders change."""
        files = [p for p in self.dataset.rglob("*") if p.is_file() and p.suffix != ".json"]
        if files:
            with self.rng.choice(files).open("ab") as fh:
                fh.write(b"\0" * self.rng.randint(1, 100))

    def add_gain(self) -> None:
        run = self.rng.choice(self.runs())
        self.serial += 1
        (run / "Gains").mkdir(exist_ok=True)
        (run / "Gains" / f"extra{self.serial}_gain.mrc").write_bytes(b"\1" * 8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_incremental_sync_equals_a_full_one_over_random_edits(
    engine: Engine, twin: Engine, tmp_path: Path, database_url: str, seed: int
) -> None:
    folder = tmp_path / "test-public-bucket"
    shutil.copytree(reference_files() / "30001", folder / "30001")
    shutil.copytree(reference_files() / "depositions_metadata", folder / "depositions_metadata")
    options = {"s3_prefix": "30001", "deposition_ids": (300, 301)}
    sync(engine, str(folder), **options)
    sync(twin, str(folder), full=True, **options)
    editor = Editor(folder, random.Random(seed))

    for round_number in range(6):
        edits = [editor.edit() for _ in range(editor.rng.randint(1, 3))]
        incremental = load(engine, str(folder), "https://foo.com", everything=True, **options)
        full = load(twin, str(folder), "https://foo.com", everything=True, full=True, **options)

        where = f"round {round_number}, edits {edits}"
        assert [(s.ok, s.error) for s in incremental.scopes] == [
            (s.ok, s.error) for s in full.scopes
        ], where
        assert changes(incremental) == changes(full), where
        assert incremental.requests["gets"] <= full.requests["gets"], where
        assert dump(database_url) == dump(twin.settings.database_url), where


# -- concurrency ----------------------------------------------------------------------------


def test_documents_are_fetched_several_at_a_time_and_a_bad_one_fails_its_dataset(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bucket"
    generate_tree(str(folder), runs=8)
    read = Store.read
    lock = threading.Lock()
    at_once = [0, 0]  # now, most

    def slow_read(self: Store, key: str, **options: Any) -> Iterator[bytes]:
        with lock:
            at_once[0] += 1
            at_once[1] = max(at_once[1], at_once[0])
        try:
            time.sleep(0.02)  # a store's latency: what the pool overlaps
            yield from read(self, key, **options)
        finally:
            with lock:
                at_once[0] -= 1

    monkeypatch.setattr(Store, "read", slow_read)
    (folder / "90001" / "RUN0005" / "Alignments" / "100" / "alignment_metadata.json").write_text(
        '{"deposition_id": 9000, "alignment_type": '
    )

    report = load(engine, str(folder), "https://foo.com", everything=True, concurrency=4)

    assert 1 < at_once[1] <= 4
    [scope] = report.scopes
    assert not scope.ok
    assert scope.error is not None
    assert scope.error.startswith(
        f"{folder.as_uri()}/90001/RUN0005/Alignments/100/alignment_metadata.json: is not valid JSON"
    )
    assert "unexpected" not in scope.error and "Traceback" not in scope.error

    at_once[1] = 0
    one = load(engine, str(folder), "https://foo.com", everything=True, concurrency=1)
    assert at_once[1] == 1 and one.scopes[0].error == scope.error


def test_a_run_whose_values_look_outside_its_folder_is_always_read_again(
    engine: Engine, tmp_path: Path, db: Any
) -> None:
    folder = tmp_path / "bucket"
    generate_tree(str(folder), runs=4)
    # a tomogram of RUN0001 names a file of RUN0002: its size depends on another run's folder
    document = (
        folder
        / "90001/RUN0001/Reconstructions/VoxelSpacing10.000/Tomograms/100"
        / "tomogram_metadata.json"
    )
    metadata = json.loads(document.read_text())
    metadata["mrc_file"] = "90001/RUN0002/TiltSeries/100/RUN0002.mrc"
    document.write_text(json.dumps(metadata))
    sync(engine, str(folder))

    with (folder / "90001/RUN0002/TiltSeries/100/RUN0002.mrc").open("ab") as fh:
        fh.write(b"\0" * 36)
    report = sync(engine, str(folder))

    [scope] = report.scopes
    assert (scope.kept, scope.read) == (2, 2)  # RUN0002 changed; RUN0001 looks into it
    sizes = db.execute(
        "SELECT t.file_size_mrc FROM cryoet.tomogram t JOIN cryoet.run r ON r.id = t.run_id "
        "WHERE r.name = 'RUN0001' AND t.s3_mrc_file LIKE '%RUN0002.mrc'"
    ).fetchall()
    assert sizes == [(100,)]


def test_a_deposition_named_by_a_late_document_is_imported_before_its_rows(
    engine: Engine, twin: Engine, tmp_path: Path, db: Any
) -> None:
    """The pass does not wait for every document before its first row: a deposition that only
    an annotation (among the last documents used) names is imported when that document is
    used, before the annotation's row refers to it, and the database is a one-at-a-time one."""
    folder = tmp_path / "bucket"
    generate_tree(str(folder), runs=6)
    source = folder / "depositions_metadata" / "9000" / "deposition_metadata.json"
    other = json.loads(source.read_text())
    other["deposition_identifier"] = 9001
    (folder / "depositions_metadata" / "9001").mkdir()
    (folder / "depositions_metadata" / "9001" / "deposition_metadata.json").write_text(
        json.dumps(other)
    )
    annotation = next((folder / "90001" / "RUN0004").rglob("Annotations/*/*.json"))
    metadata = json.loads(annotation.read_text())
    metadata["deposition_id"] = 9001
    annotation.write_text(json.dumps(metadata))

    report = sync(engine, str(folder), s3_prefix="90001", concurrency=4)
    one = sync(twin, str(folder), s3_prefix="90001", concurrency=1)

    assert report.totals()["deposition"].created == 2
    assert changes(report) == changes(one)
    assert db.execute(
        "SELECT count(*) FROM cryoet.annotation WHERE deposition_id = 9001"
    ).fetchone() == (1,)
    assert dump(db.info.dsn) == dump(twin.settings.database_url)
