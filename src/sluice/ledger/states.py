"""The load state machine: every status a load can have and every legal move between them.

This table is the only place transitions are defined. The ledger repository checks it before
each status change, and the database enforces the same table with a trigger (the migration
runner copies `TRANSITIONS` into ``sluice.transitions`` at start-up), so a bug or a hand-written
UPDATE cannot move a load along an edge that is not here.

Pipelines that keep their sources in place (GLAM-style buckets) use::

    ready ──claim──▶ ingesting ──commit──▶ loaded
      ▲                 │ └──bad input──▶ errored ──retry──▶ ready
      └──transient / lease expired──┘

Pipelines that route their sources (Cubic-style Incoming buckets) go on to Archive or Error::

    ready ─batch─▶ ready_for_ingesting ◀─▶ ingesting ▶ ready_for_archiving ▶ archiving ▶ archived
      └────────────────────────────────────────┴──────▶ ready_for_erroring ▶ erroring ▶ errored

A newer version of the same object makes a waiting load ``superseded``; an object whose
content was already loaded under another version is ``skipped``. A superseded version that a
listing shows again (the object came back as it was, or reverted to it) returns to ``ready``:
a version present in its source and not loaded always ends up loaded or visibly errored.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from sluice.errors import IllegalTransition


class Status(StrEnum):
    READY = "ready"
    READY_FOR_INGESTING = "ready_for_ingesting"
    INGESTING = "ingesting"
    LOADED = "loaded"
    READY_FOR_ARCHIVING = "ready_for_archiving"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    READY_FOR_ERRORING = "ready_for_erroring"
    ERRORING = "erroring"
    ERRORED = "errored"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"


S = Status

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    S.READY: frozenset(
        {S.INGESTING, S.READY_FOR_INGESTING, S.READY_FOR_ERRORING, S.SUPERSEDED, S.SKIPPED}
    ),
    S.READY_FOR_INGESTING: frozenset({S.INGESTING, S.READY_FOR_ERRORING, S.SUPERSEDED}),
    S.INGESTING: frozenset(
        {
            S.LOADED,
            S.READY_FOR_ARCHIVING,
            S.READY_FOR_ERRORING,
            S.ERRORED,
            S.READY,  # transient failure or expired lease: back to the queue
            S.READY_FOR_INGESTING,  # the same, for a routed load (its batch is formed)
            S.SUPERSEDED,  # the object changed under us
        }
    ),
    S.READY_FOR_ARCHIVING: frozenset({S.ARCHIVING}),
    S.ARCHIVING: frozenset({S.ARCHIVED, S.READY_FOR_ARCHIVING}),
    S.READY_FOR_ERRORING: frozenset({S.ERRORING}),
    S.ERRORING: frozenset({S.ERRORED, S.READY_FOR_ERRORING}),
    # An operator retries after fixing the input; a newer version of the object makes the
    # error moot.
    S.ERRORED: frozenset({S.READY, S.SUPERSEDED}),
    S.LOADED: frozenset(),
    S.ARCHIVED: frozenset(),
    # The version is in its source again (or an operator asks for it): back to the queue.
    S.SUPERSEDED: frozenset({S.READY}),
    S.SKIPPED: frozenset(),
}

#: Statuses in which a worker holds a lease on the load.
LEASED: frozenset[Status] = frozenset({S.INGESTING, S.ARCHIVING, S.ERRORING})
#: Statuses a load never leaves.
FINAL: frozenset[Status] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def check(current: Status | str, target: Status | str) -> None:
    """Raise IllegalTransition unless `current` → `target` is an edge of the state machine."""
    src, dst = Status(current), Status(target)
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(sorted(TRANSITIONS[src])) or "nothing (final)"
        raise IllegalTransition(
            f"a load cannot go from {src.value!r} to {dst.value!r}; from {src.value!r} it may "
            f"go to {allowed}"
        )


def sources_of(target: Status) -> frozenset[Status]:
    """Every status from which `target` can be reached in one step."""
    return frozenset(s for s, nxt in TRANSITIONS.items() if target in nxt)


def edges() -> list[tuple[str, str]]:
    """All legal transitions as (from, to) pairs, sorted; the database mirrors this list."""
    return sorted((s.value, t.value) for s, nxt in TRANSITIONS.items() for t in nxt)
