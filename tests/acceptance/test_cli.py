"""The ``sluice`` command as a user meets it: help, version, the project file, errors as one
clear line with the documented exit codes, JSON reports with exact counts, plain log lines when
the output is not a terminal, and the embedded PostgreSQL default."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

import psutil
import pytest

from sluice.recipes.glam.api import generate
from tests.acceptance.conftest import (
    DESKTOP,
    Sluice,
    describe,
    glam_import_args,
    json_report,
    query,
    row_counts,
    scalar,
)

COMMANDS = [
    "init",
    "import",
    "refresh",
    "run",
    "worker",
    "scheduler",
    "serve",
    "status",
    "retry",
    "demo",
    "sql",
    "loads",
    "feeds",
    "glam",
    "cryoet",
    "mozagg",
    "ichnaea",
    "stream",
    "cubic",
    "lake",
    "db",
]
LOG_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: \S"
)
SHARD = "aggs-desktop-nightly-{:012d}.csv"


def command_panel(help_text: str) -> dict[str, str]:
    """The commands of a ``--help`` page and their descriptions; fails on a description that
    continues on a second line."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    found: dict[str, str] = {}
    for line in lines[start + 1 :]:
        inner = line.strip()
        if inner.startswith("╰"):
            break
        inner = inner.removeprefix("│").removesuffix("│")
        entry = re.fullmatch(r" (\S+)\s{2,}(\S.*?)\s*", inner)
        assert entry is not None, f"not a one-line command entry: {line!r}\n{help_text}"
        found[entry[1]] = entry[2]
    return found


def lines_in(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


# -- help and version ------------------------------------------------------------------------------


def test_help_lists_every_command_with_a_one_line_description(sluice: Sluice) -> None:
    result = sluice.ok("--help", env={"COLUMNS": "200"})

    commands = command_panel(result.stdout)
    assert list(commands) == COMMANDS
    for name, description in commands.items():
        assert description.endswith("."), (name, description)
        assert len(description.split()) >= 3, (name, description)


def test_glam_help_lists_import_and_generate(sluice: Sluice) -> None:
    result = sluice.ok("glam", "--help", env={"COLUMNS": "200"})

    commands = command_panel(result.stdout)
    assert list(commands) == ["import", "generate"]
    assert all(description.endswith(".") for description in commands.values())


@pytest.mark.parametrize(
    ("group", "verbs"),
    [("loads", ["list", "show", "retry"]), ("feeds", ["list", "pause", "resume"])],
)
def test_operator_groups_list_their_verbs(sluice: Sluice, group: str, verbs: list[str]) -> None:
    result = sluice.ok(group, "--help", env={"COLUMNS": "200"})

    commands = command_panel(result.stdout)
    assert list(commands) == verbs
    assert all(description.endswith(".") for description in commands.values())


def test_version(sluice: Sluice) -> None:
    result = sluice.ok("--version")

    assert result.stdout == "sluice 0.1.0\n"
    assert result.stderr == ""


# -- the project file and configuration errors ---------------------------------------------------


def test_init_writes_a_project_file_that_sluice_reads(sluice: Sluice, tmp_path: Path) -> None:
    result = sluice.ok("init")

    assert result.stdout.strip() == "wrote sluice.toml"
    written = tomllib.loads((tmp_path / "sluice.toml").read_text())
    assert written == {"project": {}, "database": {}, "s3": {}, "load": {}}  # all commented
    status = sluice.ok("status", "--json")  # the starter file is accepted as it is
    assert json_report(status)["loads"] == {}


def test_second_init_fails_with_one_line(sluice: Sluice, tmp_path: Path) -> None:
    sluice.ok("init")
    project = tmp_path / "sluice.toml"
    project.write_text(project.read_text() + "\n# my own notes\n")
    edited = project.read_text()

    result = sluice.run("init")

    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [
        "sluice: sluice.toml already exists (use --force to overwrite it)"
    ]
    assert result.stdout == ""
    assert project.read_text() == edited  # not overwritten


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('[load]\nworkers = "x"\n', "workers must be int, got 'x'"),
        ("[load\nworkers = 2\n", "Expected ']' at the end of a table declaration (at line 1"),
    ],
    ids=["wrong-type", "bad-syntax"],
)
def test_broken_project_file_is_one_clear_line(
    sluice: Sluice, tmp_path: Path, content: str, reason: str
) -> None:
    project = tmp_path / "sluice.toml"
    project.write_text(content)

    result = sluice.run("status")

    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith(f"sluice: {project.resolve()}: {reason}")
    assert result.stdout == ""


def test_bad_environment_setting_is_one_clear_line(sluice: Sluice) -> None:
    result = sluice.run("status", env={"SLUICE_WORKERS": "many"})

    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [
        "sluice: SLUICE_WORKERS must be a positive integer, got 'many'"
    ]


# -- imports -----------------------------------------------------------------------------------


def test_a_mistyped_bucket_folder_fails_the_run_and_is_not_created(
    sluice: Sluice, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-bucket"
    result = sluice.run(*glam_import_args(missing))

    assert result.returncode == 1
    assert f"feed glam_desktop_nightly failed: {missing}: does not exist" in " ".join(
        result.stdout.split()
    )
    assert not missing.exists()
    [run] = json_report(sluice.ok("status", "--json"))["runs"]
    assert run["status"] == "failed"
    assert run["error"] == f"glam_desktop_nightly: {missing}: does not exist"


def test_import_with_one_bad_file_errors_that_load_and_loads_the_others(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=3000, shards=3, out=str(bucket))
    bad = bucket / SHARD.format(1)
    rows = bad.read_bytes().split(b"\n")
    rows[2], count = re.subn(rb"^\d+,", b"x12,", rows[2])  # line 3: a version that is no number
    assert count == 1
    bad.write_bytes(b"\n".join(rows))
    uri = bad.resolve().as_uri()
    message = f'{uri}, line 3, column version: invalid input syntax for type bigint: "x12"'

    result = sluice.run(*glam_import_args(bucket))

    assert result.returncode == 1, describe(result)
    assert "Traceback" not in result.stderr
    (load_id,) = (i for (i,) in query(db, "SELECT id FROM sluice.loads WHERE status = 'errored'"))
    # the report on stdout and the log on stderr name the object, the line, the column, why
    assert f"errored load {load_id}: {message}" in " ".join(result.stdout.split())
    assert f"load {load_id}: errored: {message}\n" in result.stderr
    assert scalar(db, f"SELECT count(*) FROM {DESKTOP}") == 2000  # every other row loaded

    status = json_report(sluice.ok("status", "--json"))
    assert status["loads"] == {"glam_desktop_nightly": {"errored": 1, "loaded": 2}}
    (error,) = status["errors"]
    assert {k: error[k] for k in ("load_id", "feed", "object", "status", "attempts", "error")} == {
        "load_id": load_id,
        "feed": "glam_desktop_nightly",
        "object": uri,
        "status": "errored",
        "attempts": 1,
        "error": message,
    }
    run = status["runs"][0]
    assert (run["status"], run["claimed"], run["loaded"], run["errored"]) == ("failed", 3, 2, 1)
    assert {k: run["rows"][k] for k in ("in", "inserted", "updated", "unchanged", "rejected")} == {
        "in": 2000,
        "inserted": 2000,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }


def test_import_json_report_has_exact_counts(sluice: Sluice, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=8000, shards=4, out=str(bucket))
    shard_rows = {SHARD.format(i): lines_in(bucket / SHARD.format(i)) for i in range(4)}
    assert sum(shard_rows.values()) == 8000

    first = json_report(sluice.ok(*glam_import_args(bucket, "--json")))

    assert first["command"] == "glam import --product desktop --channel nightly"
    assert (first["ok"], first["discovered"], first["loaded"], first["errored"]) == (True, 4, 4, 0)
    assert row_counts(first) == {
        "rows_in": 8000,
        "inserted": 8000,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert {load["key"]: load["counts"]["inserted"] for load in first["loads"]} == shard_rows
    # the first shard fills the empty table and builds its indexes afterwards ("bulk"); the
    # others are copied straight in ("direct")
    paths = [(load["status"], load["path"], load["error"]) for load in first["loads"]]
    assert sorted(paths) == [("loaded", "bulk", None)] + [("loaded", "direct", None)] * 3
    assert [(h["view"], h["status"]) for h in first["hooks"]] == [(f"public.view_{DESKTOP}", "ok")]

    day2 = generate(
        "desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.1
    )
    second = json_report(sluice.ok(*glam_import_args(bucket, "--json")))

    assert (second["discovered"], second["loaded"], second["errored"]) == (4, 4, 0)
    assert row_counts(second) == {
        "rows_in": 8000,
        "inserted": 0,
        "updated": day2.changed_rows,
        "unchanged": 8000 - day2.changed_rows,
        "rejected": 0,
    }
    assert {load["path"] for load in second["loads"]} == {"staged"}
    assert second["run_id"] == first["run_id"] + 1

    third = json_report(sluice.ok(*glam_import_args(bucket, "--json")))

    assert (third["ok"], third["discovered"], third["loaded"]) == (True, 0, 0)
    assert third["loads"] == [] and third["hooks"] == []
    assert set(third["rows"].values()) == {0}


def test_non_terminal_output_is_plain_log_lines(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=2000, shards=2, out=str(bucket))

    result = sluice.ok(*glam_import_args(bucket))

    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\r" not in stream  # no colours, no redrawn bars
    lines = result.stderr.splitlines()
    assert lines, "no log lines on stderr"
    assert [line for line in lines if not LOG_LINE.match(line)] == []
    for (load_id,) in query(db, "SELECT id FROM sluice.loads"):
        done = f"load {load_id}: loaded 1,000 rows (1,000 new, 0 updated, 0 unchanged, 0 rejected)"
        assert any(done in line for line in lines), result.stderr


# -- the embedded default --------------------------------------------------------------------------


def embedded_servers(folder: Path) -> list[psutil.Process]:
    """PostgreSQL processes whose command line names `folder` (the embedded server's)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "postgres" in name and str(folder) in cmdline:
            found.append(proc)
    return found


def _total_row(stdout: str, title: str) -> dict[str, str]:
    """The totals row of the run table titled `title`, by column name."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    header = next(line for line in lines[start:] if "┃" in line and "updated" in line)
    total = next(line for line in lines[start:] if " loads " in line and "│" in line)
    names = [cell.strip() for cell in header.split("┃")]
    cells = [cell.strip() for cell in total.split("│")]
    assert len(names) == len(cells), (header, total)
    return dict(zip(names, cells, strict=True))


@pytest.mark.slow
def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    embedded = Sluice(tmp_path, None)  # no SLUICE_DATABASE_URL: the private server
    expected = tmp_path / "expected"
    generate("desktop", "nightly", rows=2000, shards=4, out=str(expected))
    generate("fenix", "nightly", rows=1000, shards=2, out=str(expected))
    # the demo's second day: the same buckets re-exported with 10 % of the rows changed
    changed = sum(
        generate(
            product, "nightly", rows=0, shards=0, out=str(expected), base=str(expected), change=0.1
        ).changed_rows
        for product in ("desktop", "fenix")
    )
    assert changed > 0

    result = embedded.run("demo", "--rows", "2000")

    assert result.returncode == 0, describe(result)
    day2 = _total_row(result.stdout, "run 2: demo day 2")
    assert (day2["object"], day2["status"]) == ("6 loads", "6 loaded")
    assert (day2["new"], day2["updated"]) == ("0", f"{changed:,}")
    assert "the data is in the embedded PostgreSQL" in result.stdout
    assert (tmp_path / ".sluice" / "pgdata" / "PG_VERSION").is_file()

    status = json_report(embedded.ok("status", "--json"))

    assert status["loads"] == {
        "glam_desktop_nightly": {"loaded": 8},
        "glam_fenix_nightly": {"loaded": 4},
    }
    runs: list[dict[str, Any]] = status["runs"]
    assert [(r["command"], r["status"]) for r in runs] == [
        ("demo cryoet", "succeeded"),
        ("demo day 2", "succeeded"),
        ("demo day 1", "succeeded"),
    ]
    assert runs[1]["rows"]["updated"] == changed
    assert runs[2]["rows"]["inserted"] == 3000
    assert (runs[0]["loaded"], runs[0]["errored"]) == (1, 0)  # one generated dataset
    assert runs[0]["rows"]["inserted"] == runs[0]["rows"]["in"] > 0  # a first sync: all new

    # the last command stopped the server it started
    deadline = time.monotonic() + 10
    while embedded_servers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert embedded_servers(tmp_path) == []
    assert not (tmp_path / ".sluice" / "pgdata" / "postmaster.pid").exists()
