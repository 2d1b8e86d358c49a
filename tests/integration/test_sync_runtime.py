"""CryoET syncs on the runtime: each scope (a dataset, the depositions named) is a unit of the
work queue, versioned by what is below it; the service syncs exactly the scopes that changed,
and gives the same database as the one-shot ``cryoet load``."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.api import Engine, open_engine
from sluice.config import Settings
from sluice.errors import ConfigError
from sluice.recipes.cryoet.api import load
from sluice.runtime.session import LedgerSession
from sluice.sync.flow import SyncDeclaration
from tests.fixtures.fix_db import fresh_database
from tests.integration.test_cryoet_import import _dump as dump
from tests.integration.test_cryoet_import import reference_files

Conn = psycopg.Connection[tuple[object, ...]]


def declaration(folder: Path, **more: Any) -> SyncDeclaration:
    options = {"bucket": str(folder), "https_prefix": "https://foo.com", "everything": True}
    return SyncDeclaration(name="portal", recipe="cryoet", options={**options, **more})


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    folder = tmp_path / "test-public-bucket"
    shutil.copytree(reference_files(), folder)
    return folder


@pytest.fixture
def portal_engine(settings: Settings, bucket: Path) -> Iterator[Engine]:
    sync = declaration(bucket, deposition_ids=[300, 301])
    with open_engine(settings=replace(settings, syncs={"portal": sync})) as opened:
        yield opened


def once(engine: Engine) -> Any:
    report = engine.serve(threading.Event(), once=True)
    assert report.ok, report.as_dict()
    return report


def units(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT key, status, attempts, rows_inserted, rows_updated, rows_deleted "
        "FROM sluice.units WHERE kind = 'sync' ORDER BY id"
    ).fetchall()


def test_the_service_syncs_each_scope_as_a_unit_like_the_one_shot_load(
    portal_engine: Engine,
    bucket: Path,
    db: Conn,
    database_url: str,
    server_url: str,
    template_db: str,
    settings: Settings,
) -> None:
    first = once(portal_engine)

    found = units(db)
    assert [(key, status, attempts) for key, status, attempts, *_ in found] == [
        ("depositions_metadata/", "loaded", 1),
        ("30001/", "loaded", 1),
    ]
    assert first.counts.done == 2 and first.counts.rows.inserted > 0
    with fresh_database(server_url, "sluice_r", template_db) as reference_url:
        with open_engine(settings=replace(settings, database_url=reference_url)) as reference:
            load(
                reference,
                str(bucket),
                "https://foo.com",
                s3_prefix="30001",
                everything=True,
                deposition_ids=(300, 301),
            )
        assert dump(database_url) == dump(reference_url)

    # nothing changed: the next pass syncs nothing (one listing, no document read)
    second = once(portal_engine)
    assert second.counts.claimed == 0 and len(units(db)) == 2

    # one dataset document changes: only that scope is synced again, in place
    metadata = bucket / "30001" / "dataset_metadata.json"
    metadata.write_text(metadata.read_text().replace("Lorem ipsum dolor", "Lorem ipsum, revised"))
    third = once(portal_engine)
    assert third.counts.claimed == 1
    latest = units(db)[-1]
    assert latest[:3] == ("30001/", "loaded", 1) and latest[4] == 1  # one row updated
    assert units(db)[1][1] == "loaded"  # the version before stays on the record
    title = db.execute("SELECT title FROM cryoet.dataset").fetchone()
    assert title == ("Lorem ipsum, revised",)


def test_a_scope_that_fails_is_errored_alone_with_its_reason(
    portal_engine: Engine, bucket: Path, db: Conn
) -> None:
    (bucket / "30001" / "RUN1" / "run_metadata.json").write_text("{not json")

    report = portal_engine.serve(threading.Event(), once=True)

    assert not report.ok and report.counts.errored == 1
    rows = db.execute(
        "SELECT key, status, error FROM sluice.units WHERE kind = 'sync' ORDER BY id"
    ).fetchall()
    assert [(key, status) for key, status, _ in rows] == [
        ("depositions_metadata/", "loaded"),
        ("30001/", "errored"),
    ]
    assert rows[1][2].startswith(
        f"{bucket.as_uri()}/30001/RUN1/run_metadata.json: is not valid JSON"
    )
    assert db.execute("SELECT count(*) FROM cryoet.dataset").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM cryoet.deposition").fetchone() == (2,)


def test_a_sync_with_a_bad_option_is_refused_when_registered(engine: Engine, bucket: Path) -> None:
    with LedgerSession(engine.db, "t") as session, pytest.raises(ConfigError) as refused:
        engine.sync_flow.register(session.ledger(), declaration(bucket, bucket_typo="x"))
    assert str(refused.value).startswith("cryoet sync: unknown option 'bucket_typo'")


def test_a_full_pass_syncs_every_scope_again_and_changes_nothing(
    portal_engine: Engine, db: Conn, database_url: str
) -> None:
    once(portal_engine)
    before = dump(database_url)
    assert once(portal_engine).counts.claimed == 0

    portal_engine.sync_flow.full = True  # what `sluice run --full` asks for
    again = once(portal_engine)

    assert again.counts.claimed == 2 and again.counts.done == 2
    rows = again.counts.rows
    assert (rows.inserted, rows.updated, rows.deleted) == (0, 0, 0)
    assert dump(database_url) == before
