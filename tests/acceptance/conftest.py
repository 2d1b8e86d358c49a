"""Acceptance helpers: the real ``sluice`` command in subprocesses, against a fresh database.

Every command runs in the test's `tmp_path` (so no project file of the repository is picked up)
with ``SLUICE_DATABASE_URL`` naming the test's database. Assertions read the database directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.fix_db import fresh_database

DESKTOP = "glam_desktop_nightly_aggregation"
FAULT = "SLUICE_FAULT_PAUSE"
#: Seconds a command may take before the test gives up on it.
COMMAND_TIMEOUT = 120.0
#: Environment variables that would change how the command renders its output.
_RENDERING = (
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "TERMINAL_WIDTH",
    "TTY_COMPATIBLE",
)


def sluice_command() -> list[str]:
    """The installed ``sluice`` entry point next to this interpreter, else ``python -m``."""
    entry = Path(sys.executable).with_name("sluice")
    if entry.is_file() and os.access(entry, os.X_OK):
        return [str(entry)]
    return [sys.executable, "-m", "sluice.cli"]


@dataclass(frozen=True)
class Sluice:
    """Runs ``sluice`` in `cwd` against `database_url` (None: the embedded default)."""

    cwd: Path
    database_url: str | None

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("SLUICE_") and name not in _RENDERING
        }
        if self.database_url is not None:
            env["SLUICE_DATABASE_URL"] = self.database_url
        env.update(extra or {})
        return env

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*sluice_command(), *args],
            cwd=self.cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdout: IO[str] | int = subprocess.DEVNULL,
        stderr: IO[str] | int = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        """Start a command (by default: stderr a pipe, stdout discarded)."""
        return subprocess.Popen(
            [*sluice_command(), *args],
            cwd=self.cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command that must succeed."""
        result = self.run(*args, env=env)
        assert result.returncode == 0, describe(result)
        return result

    def with_database(self, database_url: str) -> Sluice:
        return Sluice(self.cwd, database_url)


def glam_import_args(bucket: Path, *more: str) -> tuple[str, ...]:
    return (
        "glam",
        "import",
        "--product",
        "desktop",
        "--channel",
        "nightly",
        "--bucket",
        str(bucket),
        *more,
    )


def json_report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        parsed: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON:\n{describe(result)}")
    return parsed


#: The row counts of a run report checked here (a report may carry more).
ROW_COUNTS = ("rows_in", "inserted", "updated", "unchanged", "rejected")


def row_counts(report: dict[str, Any]) -> dict[str, int]:
    """The `ROW_COUNTS` of a ``--json`` run report."""
    return {name: int(report["rows"][name]) for name in ROW_COUNTS}


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit code {result.returncode} of {' '.join(map(str, result.args))}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


# -- databases ------------------------------------------------------------------------------------


@pytest.fixture
def reference_database_url(server_url: str, template_db: str) -> Iterator[str]:
    """A second fresh database, for the clean run that a recovered run is compared with."""
    with fresh_database(server_url, "sluice_r", template_db) as url:
        yield url


@pytest.fixture
def sluice(tmp_path: Path, database_url: str) -> Sluice:
    return Sluice(tmp_path, database_url)


def query(
    url: str, statement: LiteralString, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def scalar(url: str, statement: LiteralString, params: Sequence[Any] | None = None) -> Any:
    rows = query(url, statement, params)
    assert len(rows) == 1, rows
    return rows[0][0]


def table_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table` with every column but the surrogate ``id``, in a fixed order."""
    columns = [
        name
        for (name,) in query(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s AND column_name <> 'id' "
            "ORDER BY ordinal_position",
            [table],
        )
    ]
    assert columns, f"table {table} does not exist"
    listed = sql.SQL(", ").join(map(sql.Identifier, columns))
    statement = sql.SQL("SELECT {cols} FROM {table} ORDER BY {cols}").format(
        cols=listed, table=sql.Identifier(table)
    )
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement).fetchall()


def assert_same_rows(found: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Row for row equality, with a short message naming a few differences."""
    if found == expected:
        return
    have, want = Counter(found), Counter(expected)
    extra, missing = list((have - want).elements()), list((want - have).elements())
    pytest.fail(
        f"{len(found)} rows found, {len(expected)} expected; {len(extra)} unexpected "
        f"(e.g. {extra[:2]}), {len(missing)} missing (e.g. {missing[:2]})"
    )


def staging_tables(url: str) -> list[str]:
    return [
        name
        for (name,) in query(
            url, "SELECT tablename FROM pg_tables WHERE schemaname = 'sluice_staging' ORDER BY 1"
        )
    ]
