"""What a step of a flow is to the work queue: the small interface the runner drives.

A step works one lane of the queue (`sluice.ledger.queue.Lane`): given a claimed unit and the
open transaction of that unit, it does the unit's work (COPY an object into a table, move it to
Archive, write a partition) and says what came of it. It makes no status move: the runner
claims, finishes, releases and fails units, so every flow gets leases, retries with backoff,
failure isolation and exactly-once commits from the same code.

A step raises the errors of `sluice.errors` to say why a unit failed: a `TerminalError` (bad
input: the unit goes to the lane's failed status with the message), a `TransientError` (the
unit goes back to the queue with backoff), `ObjectGone` (the unit's version no longer exists:
superseded), `LeaseLost` (another worker has it now: nothing is recorded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sluice.db import Connection
from sluice.ledger.queue import Lane
from sluice.ledger.records import Counts, Unit
from sluice.ledger.states import Status


class ProgressSink(Protocol):
    """Receives progress of one unit: bytes read so far, lines (or rows) done."""

    def advance(self, load_id: int, bytes_read: int, lines: int) -> None: ...


@dataclass
class Outcome:
    """What a step did with one unit."""

    counts: Counts = field(default_factory=Counts)
    bytes_read: int = 0
    #: The unit's next status, if not the lane's `done` (a step that routes, say).
    status: Status | None = None
    #: How the work was done, for reports (``direct``, ``bulk``, ``staged``...).
    path: str = ""
    #: Where rejected rows were written, if any.
    rejects_key: str | None = None
    #: Seconds per phase of the work.
    phases: dict[str, float] = field(default_factory=dict)


class Step(Protocol):
    """One step of a flow, driven by `sluice.runtime.runner.Runner`."""

    @property
    def lane(self) -> Lane:
        """The lane whose units this step works."""
        ...

    def label(self, unit: Unit) -> str:
        """How a unit of this step is named in logs and reports (its feed, say)."""
        ...

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        """Do the work of `unit` inside the open transaction `tx`; the runner commits it
        together with the unit's move to its next status."""
        ...

    def ended(self, unit: Unit) -> None:
        """The unit's transaction has ended (committed or rolled back): release what the work
        still holds outside it (staging tables, temporary files)."""
        ...
