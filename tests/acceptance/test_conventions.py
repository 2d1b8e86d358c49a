"""The conventions of the ``sluice`` command, checked on the real command in a subprocess:
exit codes and one-line errors (JSON under ``--json``), ``-V``, ``NO_COLOR``, the log formats
and levels, Ctrl-C, literal printing of hostile text, and ``sql`` streaming many rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sluice.recipes.cryoet.generate import generate_tree
from tests.acceptance.conftest import (
    COMMAND_TIMEOUT,
    FAULT,
    Sluice,
    describe,
    json_report,
    query,
    scalar,
)
from tests.acceptance.test_operator import WIDE, parse_error, write_csv, write_project

HOSTILE_KEYS = ("x[/]bad.csv", "[bold red]styled.csv", "root:x:0:0.csv")
#: A value that is markup and an emoji code, in a bigint column: its error message quotes it.
HOSTILE_VALUE = "[red]:x:"
ESCAPE = "\x1b"


def lines_of(stream: str) -> list[str]:
    return stream.splitlines()


# -- errors and exit codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("status", "--errors", "-1"),
            "invalid value for '--errors': input should be greater than or equal to 0 "
            "(see 'sluice status --help')",
        ),
        (
            ("status", "--runs", "-5"),
            "invalid value for '--runs': input should be greater than or equal to 0 "
            "(see 'sluice status --help')",
        ),
        (
            ("loads", "list", "--limit", "0"),
            "invalid value for '--limit': input should be greater than or equal to 1 "
            "(see 'sluice loads list --help')",
        ),
        (("loads", "show"), "missing argument 'LOAD_ID' (see 'sluice loads show --help')"),
        (("sql",), "missing argument 'QUERY' (see 'sluice sql --help')"),
        (("bogus",), "no such command 'bogus' (see 'sluice --help')"),
        (
            ("--log-level", "loud", "status"),
            "invalid value for '--log-level': 'loud' is not one of 'debug', 'info', 'warning', "
            "'error', 'critical' (see 'sluice --help')",
        ),
        (
            ("sql", "SELECT 1", "--format", "csv", "--json"),
            "--json and --format csv contradict each other (see 'sluice sql --help')",
        ),
    ],
    ids=["errors", "runs", "limit", "missing-id", "missing-query", "command", "level", "format"],
)
def test_usage_errors_are_one_line_with_exit_code_2(
    sluice: Sluice, args: tuple[str, ...], line: str
) -> None:
    result = sluice.run(*args)

    assert result.returncode == 2, describe(result)
    if "--json" in args:
        assert json_report(result) == {
            "ok": False,
            "error": line,
            "kind": "UsageError",
            "exit_code": 2,
        }
        assert result.stderr == ""
    else:
        assert lines_of(result.stderr) == [f"sluice: {line}"]
        assert result.stdout == ""


def test_status_with_negative_errors_names_the_option_and_no_sql(sluice: Sluice) -> None:
    result = sluice.run("status", "--errors", "-1")

    assert result.returncode == 2, describe(result)
    [line] = lines_of(result.stderr)
    assert "'--errors'" in line
    assert "LIMIT" not in line and "SQL" not in line


@pytest.mark.parametrize(
    ("args", "error", "kind", "code"),
    [
        (("loads", "show", "99999", "--json"), "there is no load 99999", "ConfigError", 2),
        (
            ("retry", "--feed", "nope", "--json"),
            "there is no feed 'nope' (registered: none)",
            "ConfigError",
            2,
        ),
        (
            ("status", "--errors", "-1", "--json"),
            "invalid value for '--errors': input should be greater than or equal to 0 "
            "(see 'sluice status --help')",
            "UsageError",
            2,
        ),
        (
            ("sql", "SELECT 1/0", "--format", "json"),
            "query failed: division by zero",
            "ConfigError",
            2,
        ),
        (
            ("import", "--json"),
            "no feeds are declared (no sluice.toml found); see 'sluice init'",
            "ConfigError",
            2,
        ),
    ],
    ids=["unknown-load", "unknown-feed", "usage", "sql", "no-feeds"],
)
def test_errors_under_json_are_one_json_object_on_stdout(
    sluice: Sluice, args: tuple[str, ...], error: str, kind: str, code: int
) -> None:
    result = sluice.run(*args)

    assert result.returncode == code, describe(result)
    assert json_report(result) == {"ok": False, "error": error, "kind": kind, "exit_code": code}
    assert [line for line in lines_of(result.stderr) if line.startswith("sluice:")] == []


UNEXPECTED = """\
import sys
from sluice import api, cli

def broken(self, **options):
    raise RuntimeError("boom")

api.Engine.status = broken
sys.exit(cli.run(sys.argv[1:]))
"""


def test_an_unexpected_error_is_one_line_and_debug_shows_its_traceback(sluice: Sluice) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", UNEXPECTED, *args],
            cwd=sluice.cwd,
            env=sluice.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    plain = run("status")
    assert plain.returncode == 1, describe(plain)
    assert lines_of(plain.stderr) == [
        "sluice: internal error: RuntimeError: boom (run again with --debug for the traceback)"
    ]

    debug = run("--debug", "status")
    assert debug.returncode == 1, describe(debug)
    assert "Traceback (most recent call last):" in debug.stderr
    assert 'File "<string>", line 5, in broken' in debug.stderr
    assert lines_of(debug.stderr)[-1] == "sluice: internal error: RuntimeError: boom"

    as_json = run("status", "--json")
    assert as_json.returncode == 1, describe(as_json)
    assert json_report(as_json) == {
        "ok": False,
        "error": "internal error: RuntimeError: boom (run again with --debug for the traceback)",
        "kind": "InternalError",
        "exit_code": 1,
    }


def test_version_has_a_short_option(sluice: Sluice) -> None:
    for option in ("-V", "--version"):
        result = sluice.ok(option)
        assert (result.stdout, result.stderr) == ("sluice 0.1.0\n", "")


# -- colours --------------------------------------------------------------------------------------


def test_no_color_turns_every_style_off(sluice: Sluice, tmp_path: Path) -> None:
    folders = write_project(tmp_path, "alpha")
    write_csv(folders["alpha"], "bad.csv", [("x1", "a")])
    forced = {"FORCE_COLOR": "1"}  # as if on a terminal: styles are written
    plain = {**forced, "NO_COLOR": "1"}

    styled = sluice.run("import", env=forced)
    assert styled.returncode == 1, describe(styled)
    assert ESCAPE in styled.stdout  # "errored" in bold red, the table's title in italics

    write_csv(folders["alpha"], "bad.csv", [("x2", "a")])  # a new version, errored again
    for args, code in (("import",), 1), (("status",), 0), (("--help",), 0), (("loads", "list"), 0):
        result = sluice.run(*args, env=plain)
        assert result.returncode == code, describe(result)
        assert ESCAPE not in result.stdout, args
        assert ESCAPE not in result.stderr, args


# -- logs -----------------------------------------------------------------------------------------


def test_log_format_json_is_one_object_per_line_with_run_and_load(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha")
    write_csv(folders["alpha"], "a1.csv", [(1, "a"), (2, "b")])
    bad = write_csv(folders["alpha"], "a2.csv", [("x3", "c")])

    result = sluice.run("--log-format", "json", "import", "--json")

    assert result.returncode == 1, describe(result)
    run_id = json_report(result)["run_id"]
    records = [json.loads(line) for line in lines_of(result.stderr)]
    assert records, "no log records"
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert record["time"].endswith("+00:00")
    ids = dict(query(db, "SELECT key, id FROM sluice.loads"))
    units = [r for r in records if "unit" in r]
    assert [(r["logger"], r["level"], r["run_id"]) for r in units] == [
        ("sluice.progress", "INFO", run_id)
    ] * 2
    assert sorted((r["unit"]["load_id"], r["unit"]["key"], r["unit"]["status"]) for r in units) == [
        (ids["a1.csv"], "a1.csv", "loaded"),
        (ids["a2.csv"], "a2.csv", "errored"),
    ]
    errored = next(r for r in units if r["unit"]["status"] == "errored")
    assert errored["unit"]["error"] == parse_error(bad, 1, "x3")
    assert errored["message"] == f"load {ids['a2.csv']}: errored: {parse_error(bad, 1, 'x3')}"

    # the environment chooses the same, and the level filters
    quiet = sluice.run("import", env={"SLUICE_LOG_FORMAT": "json", "SLUICE_LOG_LEVEL": "warning"})
    assert quiet.returncode == 0, describe(quiet)
    assert quiet.stderr == ""


def test_log_levels_from_options_and_the_environment(sluice: Sluice, tmp_path: Path) -> None:
    folders = write_project(tmp_path, "alpha")
    write_csv(folders["alpha"], "a1.csv", [(1, "a")])

    warning = sluice.ok("--log-level", "WARNING", "import")
    assert warning.stderr == ""
    debug = sluice.ok("--debug", "status")
    assert [line.split()[2:4] for line in lines_of(debug.stderr)] == [["DEBUG", "sluice.cli:"]]
    from_env = sluice.ok("status", env={"SLUICE_LOG_LEVEL": "debug"})
    assert " DEBUG sluice.cli: database " in from_env.stderr
    option_wins = sluice.ok("--log-level", "info", "status", env={"SLUICE_LOG_LEVEL": "debug"})
    assert option_wins.stderr == ""

    wrong = sluice.run("status", env={"SLUICE_LOG_LEVEL": "loud"})
    assert wrong.returncode == 2, describe(wrong)
    assert lines_of(wrong.stderr) == [
        "sluice: SLUICE_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'loud'"
    ]


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_during_an_import_is_one_line_and_exit_130(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha")
    write_csv(folders["alpha"], "a1.csv", [(1, "a"), (2, "b")])
    proc = sluice.start("import", env={FAULT: "copy"})
    lines: list[str] = []
    paused = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.strip() == "sluice-fault: paused at copy":
                paused.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert paused.wait(60), "\n".join(lines)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)

    assert code == 130, "\n".join(lines)
    assert lines[-1] == "sluice: interrupted"
    assert [line for line in lines if line.startswith("sluice:")] == ["sluice: interrupted"]
    assert not any("Traceback" in line for line in lines)
    [(status, error)] = query(db, "SELECT status, error FROM sluice.runs")
    assert status == "failed"
    assert error.startswith("interrupted (SIGINT) with 1 load(s) in hand")

    again = json_report(sluice.ok("import", "--json"))  # the load in hand is worked again
    assert (again["discovered"], again["loaded"]) == (0, 1)
    assert scalar(db, "SELECT count(*) FROM alpha") == 2


# -- untrusted text is printed as it is ----------------------------------------------------------


def test_hostile_keys_and_values_print_literally(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    folders = write_project(tmp_path, "alpha")
    for n, key in enumerate(HOSTILE_KEYS[:2]):
        write_csv(folders["alpha"], key, [(n, "[blink]fine[/]")])
    bad = write_csv(folders["alpha"], HOSTILE_KEYS[2], [(HOSTILE_VALUE, "v")])
    message = parse_error(bad, 1, HOSTILE_VALUE)

    imported = sluice.run("import", env={**WIDE, "FORCE_COLOR": "1"})
    assert imported.returncode == 1, describe(imported)
    shown = imported.stdout
    for key in HOSTILE_KEYS:
        assert f"│ {key} " in _unstyled(shown), key
    ids = dict(query(db, "SELECT key, id FROM sluice.loads"))
    assert f"errored load {ids[HOSTILE_KEYS[2]]}: {message}" in _unstyled(shown)
    assert "❌" not in shown  # `:x:` is not an emoji code here
    assert f"load {ids[HOSTILE_KEYS[2]]}: {HOSTILE_KEYS[2]} (" in imported.stderr

    status = sluice.ok("status", env=WIDE).stdout
    assert message in status
    listed = sluice.ok("loads", "list", env=WIDE).stdout
    for key in HOSTILE_KEYS:
        assert f"│ {key} " in listed, key
    assert "❌" not in status + listed
    assert query(db, "SELECT v FROM alpha ORDER BY n") == [("[blink]fine[/]",)] * 2
    rows = sluice.ok("sql", "SELECT v FROM alpha ORDER BY n", env=WIDE).stdout
    assert rows.count("[blink]fine[/]") == 2


def test_a_hostile_run_command_prints_literally_and_a_sync_counts_scopes(
    sluice: Sluice, tmp_path: Path
) -> None:
    folder = tmp_path / "[bold red]:x:"
    tree = generate_tree(str(folder), runs=1)
    args = ("cryoet", "load", str(folder), "https://files.example")
    synced = sluice.run(*args, "--s3-prefix", str(tree.dataset), "--import-everything")
    assert synced.returncode == 0, describe(synced)

    [run] = json_report(sluice.ok("status", "--json"))["runs"]
    command = f"cryoet load {folder} --s3-prefix {tree.dataset}"
    assert (run["kind"], run["units"], run["command"], run["loaded"]) == (
        "sync",
        "scopes",
        command,
        1,
    )
    text = sluice.ok("status", env=WIDE).stdout
    row = next(line for line in text.splitlines() if "cryoet load" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[2:5] == ["sync", command, "succeeded"]
    assert cells[7:9] == ["1 scope", "0 scopes"]


def _unstyled(text: str) -> str:
    """`text` without its SGR escape sequences (the styles a forced terminal gets)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# -- sql ------------------------------------------------------------------------------------------

MANY = 50_000
MANY_QUERY = (
    "SELECT g AS n, md5(g::text) AS h, g % 7 = 0 AS sevens, NULLIF(g % 5, 0) AS fives "
    f"FROM generate_series(1, {MANY}) g ORDER BY g"
)


def many_row(n: int) -> dict[str, Any]:
    """Row `n` of `MANY_QUERY`."""
    md5 = hashlib.md5(str(n).encode()).hexdigest()
    return {"n": n, "h": md5, "sevens": n % 7 == 0, "fives": n % 5 or None}


def test_sql_streams_many_rows_as_ndjson_csv_and_json(sluice: Sluice) -> None:
    started = time.perf_counter()
    ndjson = sluice.ok("sql", MANY_QUERY, "--format", "ndjson")
    seconds = time.perf_counter() - started
    print(f"sql --format ndjson: {MANY:,} rows in {seconds:.2f} s")  # about 1 s here
    rows = [json.loads(line) for line in lines_of(ndjson.stdout)]
    assert len(rows) == MANY
    assert (rows[0], rows[-1]) == (many_row(1), many_row(MANY))
    assert [row["n"] for row in rows] == list(range(1, MANY + 1))

    started = time.perf_counter()
    as_csv = sluice.ok("sql", MANY_QUERY, "--format", "csv")
    print(f"sql --format csv: {MANY:,} rows in {time.perf_counter() - started:.2f} s")
    table = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert table[0] == ["n", "h", "sevens", "fives"]
    assert len(table) == MANY + 1
    first, last = many_row(1), many_row(MANY)
    assert table[1] == [str(first["n"]), first["h"], "false", "1"]
    assert table[-1] == [str(last["n"]), last["h"], "false", ""]  # NULL: an empty field

    as_json = json.loads(sluice.ok("sql", MANY_QUERY, "--json").stdout)
    assert len(as_json) == MANY and as_json[-1] == many_row(MANY)
    empty = sluice.ok("sql", "SELECT 1 AS one WHERE false", "--format", "json")
    assert json.loads(empty.stdout) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("init", "/etc/passwd"), "/etc/passwd is not a folder"),
        (("init", "/proc"), "cannot write /proc/sluice.toml"),
        (("demo", "--bucket", "/proc/x"), "/proc/x: cannot create this folder"),
        (
            (
                "glam",
                "generate",
                "--product",
                "desktop",
                "--channel",
                "nightly",
                "--out",
                "/proc/nope",
            ),
            "/proc/nope: cannot create this folder",
        ),
    ],
)
def test_paths_that_cannot_be_written_are_one_line_exit_2(
    sluice: Sluice, args: tuple[str, ...], fragment: str
) -> None:
    result = sluice.run(*args)

    assert result.returncode == 2, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_project_file_that_is_not_utf8_is_one_line_exit_2(sluice: Sluice, tmp_path: Path) -> None:
    (tmp_path / "sluice.toml").write_bytes(b"[load]\nworkers = 2 # caf\xe9\n")

    result = sluice.run("status")

    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [
        f"sluice: {tmp_path.resolve() / 'sluice.toml'}: not UTF-8 text (byte 24 is b'\\xe9')"
    ]
