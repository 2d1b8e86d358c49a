"""Versioned schema migrations for the ``sluice`` schema.

Migrations are the ``NNNN_name.sql`` files of ``sluice/db/migrations``, applied in order, each
once, all in one transaction under an advisory lock: running them twice is a no-op, and two
processes starting at once apply them exactly once (the second waits for the first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import LiteralString

import psycopg

from sluice.ledger.states import edges

# An arbitrary constant: the advisory lock that serialises schema changes.
MIGRATION_LOCK = 7_304_221_001
_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: LiteralString


def available() -> list[Migration]:
    """Every migration shipped with this version of sluice, in order."""
    found = []
    for entry in files("sluice.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            sql: LiteralString = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match.group(1)), match.group(2), sql))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    """Bring the schema up to date; return the migrations that were applied now."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        conn.execute("CREATE SCHEMA IF NOT EXISTS sluice")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sluice.migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM sluice.migrations")}
        for migration in available():
            if migration.version in done:
                continue
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO sluice.migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
            applied_now.append(migration)
        _sync_transitions(conn)
    return applied_now


def _sync_transitions(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Make ``sluice.transitions`` equal to the state machine of this code."""
    current = sorted(
        (a, b) for a, b in conn.execute("SELECT from_status, to_status FROM sluice.transitions")
    )
    wanted = edges()
    if current == wanted:
        return
    conn.execute("DELETE FROM sluice.transitions")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sluice.transitions (from_status, to_status) VALUES (%s, %s)", wanted
        )
