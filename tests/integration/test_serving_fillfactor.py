"""What keeps the WAL of a daily change small: page room for HOT updates in the target."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sluice.api import Engine
from sluice.recipes.glam.api import generate, import_aggregates

DESKTOP = "glam_desktop_nightly_aggregation"


def reloptions(db: psycopg.Connection, name: str) -> list[str]:
    row = db.execute("SELECT reloptions FROM pg_class WHERE oid = to_regclass(%s)", [name])
    found = row.fetchone()
    assert found is not None
    return list(found[0] or [])


def test_the_target_leaves_room_for_hot_updates(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=500, shards=1, out=bucket)
    import_aggregates(engine, "desktop", "nightly", bucket)

    # The serving copy is a view over the target: the target's pages have the room.
    assert "fillfactor=90" in reloptions(db, DESKTOP)
