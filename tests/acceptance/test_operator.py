"""The operator's verbs in a subprocess: ``sluice loads list|show|retry``, ``sluice feeds
list|pause|resume`` and the units in hand of ``sluice status``, on a project of small feeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest

from tests.acceptance.conftest import (
    FAULT,
    Sluice,
    describe,
    json_report,
    query,
    scalar,
)
from tests.fixtures.faults import kill_at_fault

COLUMNS = ["n bigint not null", "v text"]
#: Wide enough that no table cell of these tests is folded.
WIDE = {"COLUMNS": "300"}
STUCK = "stuck: owner gone, returns to the queue at the next claim"


def write_project(folder: Path, *feeds: str) -> dict[str, Path]:
    """``sluice.toml`` declaring one feed per name, each over ``bucket/<name>`` into the table
    of the same name (``n bigint`` key, ``v text``); return the feeds' folders."""
    lines: list[str] = []
    folders = {}
    for name in feeds:
        folders[name] = folder / "bucket" / name
        folders[name].mkdir(parents=True, exist_ok=True)
        lines += [
            f"[feeds.{name}]",
            f'source = "bucket/{name}"',
            f'table = "{name}"',
            "columns = [" + ", ".join(f'"{c}"' for c in COLUMNS) + "]",
            'key = ["n"]',
            "",
        ]
    (folder / "sluice.toml").write_text("\n".join(lines))
    return folders


def write_csv(folder: Path, key: str, rows: Sequence[tuple[object, str]]) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n},{v}\n" for n, v in rows))
    return path


def parse_error(path: Path, line: int, value: str) -> str:
    """The ledger's message for a value of column ``n`` that is not a number."""
    reason = f'invalid input syntax for type bigint: "{value}"'
    # the object as the store names it: its path after file://, not percent-encoded
    return f"file://{path.resolve()}, line {line}, column n: {reason}"


def one_line(result: Any, expected: str) -> None:
    """`result` failed with exit code 2 and exactly the line `expected` on stderr."""
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [expected], describe(result)
    assert result.stdout == ""


def execute(db: str, statement: LiteralString) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(statement)


def load_ids(db: str, feed: str) -> dict[str, int]:
    return dict(
        query(
            db,
            "SELECT l.key, l.id FROM sluice.units l JOIN sluice.feeds f ON f.id = l.feed_id "
            "WHERE f.name = %s",
            [feed],
        )
    )


# -- loads --------------------------------------------------------------------------------------


def test_loads_list_filters_newest_first_and_show_tells_everything(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha", "beta")
    write_csv(folders["alpha"], "a1.csv", [(1, "one"), (2, "two")])
    bad = write_csv(folders["alpha"], "a2.csv", [(3, "three"), ("x4", "four")])
    write_csv(folders["beta"], "b1.csv", [(5, "five")])
    imported = sluice.run("import")
    assert imported.returncode == 1, describe(imported)
    alpha, beta = load_ids(db, "alpha"), load_ids(db, "beta")

    every = json_report_list(sluice.ok("loads", "list", "--json"))
    assert [load["id"] for load in every] == sorted([*alpha.values(), *beta.values()])[::-1]
    assert {(load["feed"], load["key"], load["status"]) for load in every} == {
        ("alpha", "a1.csv", "loaded"),
        ("alpha", "a2.csv", "errored"),
        ("beta", "b1.csv", "loaded"),
    }

    of_alpha = json_report_list(sluice.ok("loads", "list", "--feed", "alpha", "--json"))
    assert [load["key"] for load in of_alpha] == ["a2.csv", "a1.csv"]
    errored = json_report_list(sluice.ok("loads", "list", "--status", "errored", "--json"))
    assert [(load["id"], load["error"]) for load in errored] == [
        (alpha["a2.csv"], parse_error(bad, 2, "x4"))
    ]
    newest = sluice.ok("loads", "list", "--status", "loaded", "--limit", "1", "--json")
    assert [load["id"] for load in json_report_list(newest)] == [beta["b1.csv"]]
    text = sluice.ok("loads", "list", "--feed", "alpha", "--status", "loaded", env=WIDE).stdout
    assert "a1.csv" in text and "a2.csv" not in text and "b1.csv" not in text

    shown = json_report(sluice.ok("loads", "show", str(alpha["a2.csv"]), "--json"))
    assert {k: shown[k] for k in ("id", "kind", "feed", "key", "status", "attempts")} == {
        "id": alpha["a2.csv"],
        "kind": "load",
        "feed": "alpha",
        "key": "a2.csv",
        "status": "errored",
        "attempts": 1,
    }
    assert shown["object"] == bad.resolve().as_uri()
    assert shown["error"] == parse_error(bad, 2, "x4")
    assert (shown["error_detail"]["line"], shown["error_detail"]["column"]) == (2, "n")
    assert shown["counts"] == {
        "rows_in": 0,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "deleted": 0,
    }
    text = sluice.ok("loads", "show", str(alpha["a2.csv"]), env=WIDE).stdout
    assert f"load {alpha['a2.csv']}" in text
    assert parse_error(bad, 2, "x4") in text


def json_report_list(result: Any) -> list[dict[str, Any]]:
    parsed = json_report(result)
    assert isinstance(parsed, list), parsed
    return parsed


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("loads", "show", "99999"), "sluice: there is no load 99999"),
        (("loads", "retry", "99999"), "sluice: there is no load 99999"),
        (("retry", "99999"), "sluice: there is no load 99999"),
        (
            ("loads", "retry", "--feed", "nope"),
            "sluice: there is no feed 'nope' (registered: none)",
        ),
        (("retry", "--feed", "nope"), "sluice: there is no feed 'nope' (registered: none)"),
        (("loads", "list", "--feed", "nope"), "sluice: there is no feed 'nope' (registered: none)"),
        (("feeds", "pause", "nope"), "sluice: there is no feed 'nope' (registered: none)"),
        (
            ("loads", "retry"),
            "sluice: name load ids or --feed (retrying everything must be explicit) "
            "(see 'sluice loads retry --help')",
        ),
        (
            ("loads", "retry", "1", "--status", "ready"),
            "sluice: invalid value for '--status': 'ready' is not one of 'errored' "
            "(see 'sluice loads retry --help')",
        ),
    ],
    ids=[
        "show",
        "loads-retry",
        "retry",
        "loads-retry-feed",
        "retry-feed",
        "list-feed",
        "pause",
        "retry-nothing",
        "retry-status",
    ],
)
def test_unknown_loads_and_feeds_are_one_line_usage_errors(
    sluice: Sluice, args: tuple[str, ...], line: str
) -> None:
    one_line(sluice.run(*args), line)


def test_retry_of_an_errored_load_after_fixing_its_table(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "checked")
    execute(
        db,
        "CREATE TABLE checked (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "n bigint NOT NULL, v text, CONSTRAINT checked_key UNIQUE NULLS NOT DISTINCT (n), "
        "CONSTRAINT no_bad CHECK (v <> 'bad'))",
    )
    write_csv(folders["checked"], "c.csv", [(1, "good"), (2, "bad"), (3, "fine")])
    assert sluice.run("import").returncode == 1
    [(load_id, status, error)] = query(db, "SELECT id, status, error FROM sluice.loads")
    assert (status, error) == (
        "errored",
        'the row violates check constraint "no_bad"',
    )

    # one unknown id among the ids: an error, and nothing is retried
    one_line(sluice.run("loads", "retry", str(load_id), "99999"), "sluice: there is no load 99999")
    assert scalar(db, "SELECT status FROM sluice.loads") == "errored"

    execute(db, "ALTER TABLE checked DROP CONSTRAINT no_bad")  # the operator fixes the table
    retried = json_report(sluice.ok("loads", "retry", str(load_id), "--json"))
    assert retried == {"ok": True, "retried": [load_id]}
    assert scalar(db, "SELECT status FROM sluice.loads") == "ready"
    again = sluice.ok("retry", "--feed", "checked")
    assert again.stdout == "0 load(s) back in the queue: -\n"  # nothing errored any more

    report = json_report(sluice.ok("import", "--json"))
    assert (report["ok"], report["discovered"], report["loaded"]) == (True, 0, 1)
    [load] = report["loads"]  # a retried load counts its attempts afresh
    assert (load["load_id"], load["status"], load["attempt"]) == (load_id, "loaded", 1)
    assert query(db, "SELECT n, v FROM checked ORDER BY n") == [
        (1, "good"),
        (2, "bad"),
        (3, "fine"),
    ]


# -- feeds --------------------------------------------------------------------------------------


def test_a_paused_feed_is_skipped_by_import_and_run_until_resumed(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha", "beta")
    write_csv(folders["alpha"], "a1.csv", [(1, "a")])
    write_csv(folders["beta"], "b1.csv", [(1, "b")])
    assert json_report(sluice.ok("import", "--json"))["loaded"] == 2  # registers both feeds

    paused = sluice.ok("feeds", "pause", "alpha")
    assert paused.stdout == "feed alpha paused\n"
    feeds = json_report_list(sluice.ok("feeds", "list", "--json"))
    assert [(f["name"], f["active"], f["done"], f["errored"]) for f in feeds] == [
        ("alpha", False, 1, 0),
        ("beta", True, 1, 0),
    ]
    listed = sluice.ok("feeds", "list", env=WIDE).stdout
    assert "paused" in listed and "active" in listed

    write_csv(folders["alpha"], "a2.csv", [(2, "a")])
    write_csv(folders["beta"], "b2.csv", [(2, "b")])
    imported = sluice.run("import", "--json")
    assert imported.returncode == 0, describe(imported)
    report = json_report(imported)
    assert [(load["feed"], load["key"]) for load in report["loads"]] == [("beta", "b2.csv")]
    assert "feed alpha is paused (sluice feeds resume alpha); skipped" in imported.stderr

    write_csv(folders["beta"], "b3.csv", [(3, "b")])
    served = json_report(sluice.ok("run", "--once", "--json"))
    assert (served["ok"], served["discovered"], served["loaded"]) == (True, 1, 1)
    assert scalar(db, "SELECT count(*) FROM alpha") == 1
    assert scalar(db, "SELECT count(*) FROM beta") == 3
    assert sorted(load_ids(db, "alpha")) == ["a1.csv"]  # a paused feed is not even scanned

    resumed = sluice.ok("feeds", "resume", "alpha", "--json")
    assert json_report(resumed) == {"ok": True, "feed": "alpha", "active": True}
    served = json_report(sluice.ok("run", "--once", "--json"))
    assert (served["ok"], served["discovered"], served["loaded"]) == (True, 1, 1)
    assert query(db, "SELECT n, v FROM alpha ORDER BY n") == [(1, "a"), (2, "a")]

    # each run counted in its kind's terms, the newest first
    runs = json_report(sluice.ok("status", "--json", "--runs", "4"))["runs"]
    assert [(r["kind"], r["command"], r["units"], r["loaded"]) for r in runs] == [
        ("service", "run --once", "loads", 1),
        ("service", "run --once", "loads", 1),
        ("import", "import", "loads", 1),
        ("import", "import", "loads", 2),
    ]
    text = sluice.ok("status", "--runs", "4", env=WIDE).stdout
    cells = [
        [cell.strip() for cell in line.split("│")][2:9]
        for line in text.splitlines()
        if line.startswith("│") and ("import" in line or "run --once" in line)
    ]
    assert [(c[0], c[1], c[2], c[5], c[6]) for c in cells] == [
        ("service", "run --once", "succeeded", "1 load", "0 loads"),
        ("service", "run --once", "succeeded", "1 load", "0 loads"),
        ("import", "import", "succeeded", "1 load", "0 loads"),
        ("import", "import", "succeeded", "2 loads", "0 loads"),
    ]


# -- status: the units in hand --------------------------------------------------------------------


def test_status_shows_the_units_in_hand_and_a_stuck_one_after_its_owner_died(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha")
    write_csv(folders["alpha"], "a1.csv", [(1, "a"), (2, "b")])
    seen: dict[str, Any] = {}

    def while_paused() -> None:
        status = json_report(sluice.ok("status", "--json"))
        [unit] = status["leased"]
        seen.update(unit)
        seen["text"] = sluice.ok("status", env=WIDE).stdout

    proc = sluice.start("import", env={FAULT: "commit"})
    kill_at_fault(proc, "commit", while_paused=while_paused)

    [(load_id, owner)] = query(db, "SELECT id, lease_owner FROM sluice.loads")
    assert {k: seen[k] for k in ("id", "feed", "key", "status", "owner", "owner_alive")} == {
        "id": load_id,
        "feed": "alpha",
        "key": "a1.csv",
        "status": "ingesting",
        "owner": owner,
        "owner_alive": True,
    }
    assert seen["stuck"] is False and 0 < seen["lease_left_seconds"] <= 120
    assert "in hand" in seen["text"] and STUCK not in seen["text"]

    status = json_report(sluice.ok("status", "--json"))
    [unit] = status["leased"]
    assert (unit["id"], unit["owner_alive"], unit["stuck"]) == (load_id, False, True)
    text = sluice.ok("status", env=WIDE).stdout
    assert STUCK in text
    row = next(line for line in text.splitlines() if STUCK in line)
    assert [cell.strip() for cell in row.split("│")][1:5] == [
        str(load_id),
        "alpha",
        "a1.csv",
        "ingesting",
    ]

    report = json_report(sluice.ok("import", "--json"))
    assert [(r["load_id"], r["status"], r["attempt"]) for r in report["loads"]] == [
        (load_id, "loaded", 2)
    ]
    assert json_report(sluice.ok("status", "--json"))["leased"] == []
