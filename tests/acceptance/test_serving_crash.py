"""A real ``sluice glam import`` SIGKILLed after its loads committed and before it applied their
keys to the incremental serving copy: the keys stay recorded, the copy is visibly not current,
and the next run brings it up to date (the serving copy is never silently stale)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sluice.load.serving import serving_overview
from sluice.recipes.glam.api import generate
from tests.acceptance.conftest import (
    DESKTOP,
    FAULT,
    Sluice,
    glam_import_args,
    json_report,
    scalar,
)
from tests.fixtures.faults import kill_at_fault

pytestmark = pytest.mark.slow

ROWS = 20_000
SERVING = f"view_{DESKTOP}"
#: The rows the loads held for the serving view (changed since its last apply).
HELD = f"SELECT count(*) FROM {SERVING}_held"
DIFFERENCES = (
    f"SELECT count(*) FROM ((SELECT * FROM {DESKTOP} EXCEPT ALL SELECT * FROM {SERVING}) "
    f"UNION ALL (SELECT * FROM {SERVING} EXCEPT ALL SELECT * FROM {DESKTOP})) d"
)


def _status(url: str) -> tuple[str | None, int, bool | None]:
    with psycopg.connect(url, autocommit=True) as conn:
        [status] = serving_overview(conn)
    return status.state, status.pending_keys, status.current


@pytest.mark.parametrize("rerun", ["import", "run --once", "refresh"])
def test_kill_between_the_loads_and_the_serving_apply(
    sluice: Sluice, tmp_path: Path, rerun: str
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=ROWS, shards=4, out=str(bucket))
    first = json_report(sluice.ok(*glam_import_args(bucket, "--json")))
    assert [h["method"] for h in first["hooks"]] == ["build"]
    day2 = generate(
        "desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.1
    )

    def loads_committed() -> None:
        assert scalar(db, "SELECT count(*) FROM sluice.loads WHERE status = 'loaded'") == 8
        assert scalar(db, HELD) == day2.changed_rows

    proc = sluice.start(*glam_import_args(bucket), env={FAULT: "serving"})
    kill_at_fault(proc, "serving", while_paused=loads_committed)

    # The dead run's loads are in the table, their rows held, the copy not current.
    assert _status(db) == ("ready", day2.changed_rows, False)
    assert scalar(db, DIFFERENCES) == 2 * day2.changed_rows

    if rerun == "import":
        again = json_report(sluice.ok(*glam_import_args(bucket, "--json")))
        assert again["loads"] == []  # nothing left to load...
    elif rerun == "run --once":
        # The service's one-shot pass over the registered feed does the same.
        sluice.ok("run", "--once")
    else:
        # So does the refresh of every registered table feed, which loads nothing.
        refreshed = json_report(sluice.ok("refresh", "--json"))
        assert refreshed["loads"] == []
    # ...but the keys left behind are applied, and the run records it.
    hooks = scalar(db, "SELECT hooks FROM sluice.runs WHERE hooks <> '[]' ORDER BY id DESC LIMIT 1")
    [hook] = [h for h in hooks if h.get("method")]
    assert (hook["status"], hook["method"], hook["keys"]) == ("ok", "apply", day2.changed_rows)
    assert _status(db) == ("ready", 0, True)
    assert scalar(db, DIFFERENCES) == 0
    assert scalar(db, "SELECT changes_seq = refreshed_seq FROM sluice.targets") is True
