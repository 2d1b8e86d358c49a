"""The load state machine: every edge of the table is legal, everything else is refused with a
message that says where the load may go instead; final statuses have no exits."""

from __future__ import annotations

import itertools

import pytest

from sluice.errors import IllegalTransition, TerminalError
from sluice.ledger.states import FINAL, LEASED, TRANSITIONS, Status, check, edges, sources_of

S = Status

#: The state machine as documented: keep-in-place pipelines (GLAM), routed pipelines (Archive /
#: Error), supersede (also of an errored version: a newer one makes its error moot) and skip.
#: Written out by hand so that any change to the table is deliberate.
DOCUMENTED_EDGES = [
    ("archiving", "archived"),
    ("archiving", "ready_for_archiving"),
    ("errored", "ready"),
    ("errored", "superseded"),
    ("erroring", "errored"),
    ("erroring", "ready_for_erroring"),
    ("ingesting", "errored"),
    ("ingesting", "loaded"),
    ("ingesting", "ready"),
    ("ingesting", "ready_for_archiving"),
    ("ingesting", "ready_for_erroring"),
    ("ingesting", "ready_for_ingesting"),
    ("ingesting", "superseded"),
    ("ready", "ingesting"),
    ("ready", "ready_for_erroring"),
    ("ready", "ready_for_ingesting"),
    ("ready", "skipped"),
    ("ready", "superseded"),
    ("ready_for_archiving", "archiving"),
    ("ready_for_erroring", "erroring"),
    ("ready_for_ingesting", "ingesting"),
    ("ready_for_ingesting", "ready_for_erroring"),
    ("ready_for_ingesting", "superseded"),
    ("superseded", "ready"),
]


def test_edges_are_sorted_unique_and_exactly_the_documented_machine() -> None:
    found = edges()
    assert found == sorted(found)
    assert len(found) == len(set(found))
    assert found == DOCUMENTED_EDGES


def test_edges_list_every_transition_of_the_table() -> None:
    from_table = {(s.value, t.value) for s, targets in TRANSITIONS.items() for t in targets}
    assert set(edges()) == from_table
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in edges())


def test_the_table_has_an_entry_for_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status)


@pytest.mark.parametrize(("src", "dst"), DOCUMENTED_EDGES)
def test_every_edge_is_legal(src: str, dst: str) -> None:
    check(src, dst)
    check(Status(src), Status(dst))


def test_every_pair_outside_the_table_is_refused() -> None:
    legal = set(DOCUMENTED_EDGES)
    refused = 0
    for src, dst in itertools.product(Status, Status):
        if (src.value, dst.value) in legal:
            check(src, dst)
            continue
        with pytest.raises(IllegalTransition):
            check(src, dst)
        refused += 1
    assert refused == len(Status) ** 2 - len(DOCUMENTED_EDGES)


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        (
            "loaded",
            "ready",
            "a load cannot go from 'loaded' to 'ready'; from 'loaded' it may go to nothing (final)",
        ),
        (
            "ready",
            "loaded",
            "a load cannot go from 'ready' to 'loaded'; from 'ready' it may go to ingesting, "
            "ready_for_erroring, ready_for_ingesting, skipped, superseded",
        ),
        (
            "errored",
            "loaded",
            "a load cannot go from 'errored' to 'loaded'; from 'errored' it may go to ready, "
            "superseded",
        ),
        (
            "ready_for_archiving",
            "archived",
            "a load cannot go from 'ready_for_archiving' to 'archived'; from "
            "'ready_for_archiving' it may go to archiving",
        ),
        (
            "ingesting",
            "archived",
            "a load cannot go from 'ingesting' to 'archived'; from 'ingesting' it may go to "
            "errored, loaded, ready, ready_for_archiving, ready_for_erroring, ready_for_ingesting, "
            "superseded",
        ),
        (
            "superseded",
            "ingesting",
            "a load cannot go from 'superseded' to 'ingesting'; from 'superseded' it may go "
            "to ready",
        ),
        (
            "loaded",
            "ready",
            "a load cannot go from 'loaded' to 'ready'; from 'loaded' it may go to nothing (final)",
        ),
    ],
)
def test_illegal_transition_names_both_statuses_and_the_allowed_ones(
    src: str, dst: str, message: str
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        check(src, dst)
    assert str(caught.value) == message
    assert isinstance(caught.value, TerminalError)  # a bug, never retried


def test_a_status_cannot_move_to_itself() -> None:
    for status in Status:
        with pytest.raises(IllegalTransition, match=f"from '{status.value}' to '{status.value}'"):
            check(status, status)


def test_final_statuses_have_no_exits() -> None:
    assert {S.LOADED, S.ARCHIVED, S.SKIPPED} == FINAL
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
        assert not any(src == final.value for src, _ in edges())
        for target in Status:
            with pytest.raises(IllegalTransition, match=r"nothing \(final\)"):
                check(final, target)


def test_every_non_final_status_can_reach_a_final_one() -> None:
    for start in set(Status) - FINAL:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & FINAL, f"{start} can never finish"


def test_leased_statuses_can_give_their_load_back() -> None:
    assert {S.INGESTING, S.ARCHIVING, S.ERRORING} == LEASED
    # A worker that fails transiently (or whose lease expires) hands the load back to a
    # waiting status; a lease never traps a load.
    assert S.READY in TRANSITIONS[S.INGESTING]
    assert S.READY_FOR_ARCHIVING in TRANSITIONS[S.ARCHIVING]
    assert S.READY_FOR_ERRORING in TRANSITIONS[S.ERRORING]
    assert not LEASED & FINAL


def test_sources_of() -> None:
    assert sources_of(S.READY) == {S.INGESTING, S.ERRORED, S.SUPERSEDED}
    assert sources_of(S.INGESTING) == {S.READY, S.READY_FOR_INGESTING}
    assert sources_of(S.SUPERSEDED) == {S.READY, S.READY_FOR_INGESTING, S.INGESTING, S.ERRORED}
    assert sources_of(S.ARCHIVED) == {S.ARCHIVING}
    for status in Status:
        assert sources_of(status) == {s for s in Status if status in TRANSITIONS[s]}


@pytest.mark.parametrize(
    "path",
    [
        ["ready", "ingesting", "loaded"],
        ["ready", "ingesting", "ready", "ingesting", "errored", "ready", "ingesting", "loaded"],
        [
            "ready",
            "ready_for_ingesting",
            "ingesting",
            "ready_for_archiving",
            "archiving",
            "archived",
        ],
        ["ready", "ready_for_ingesting", "ingesting", "ready_for_erroring", "erroring", "errored"],
        ["ready", "superseded"],
        ["ready", "ingesting", "errored", "superseded"],
        ["ready", "ingesting", "superseded", "ready", "ingesting", "loaded"],
        ["ready", "skipped"],
    ],
)
def test_documented_pipelines_are_walkable(path: list[str]) -> None:
    for src, dst in itertools.pairwise(path):
        check(src, dst)
