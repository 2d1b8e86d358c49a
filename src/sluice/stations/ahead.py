"""The next batch prepared while the server writes the current one.

`apply_batch` spends about half its time waiting for the server's write of the stations,
and preparing a batch (`prepare_batch`: reports → observations as columns) is pure Python.
A `Lookahead` is told the next batch (`offer`); the current batch's `apply_batch` runs
`Lookahead.prepare` as its ``meanwhile``, after its write was sent and before its result is
read; the next batch then takes what was prepared (`take`). All on one thread: a second
thread would hold the interpreter's lock while the first wants it back after each round
trip, which measured slower than no overlap at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from sluice.stations.updater import BatchResult, PreparedBatch, apply_batch, prepare_batch

Reports = Sequence[Mapping[str, Any]]


class Lookahead:
    """One batch told ahead, and what it became once prepared."""

    def __init__(self, *, map_content: bool = True) -> None:
        self.map_content = map_content
        self._offered: tuple[str, Callable[[], Reports]] | None = None
        self._prepared: tuple[str, PreparedBatch] | None = None

    def offer(self, batch_id: str, reports: Callable[[], Reports]) -> None:
        """The batch to be applied next: its id, and how to get its reports."""
        self._offered, self._prepared = (batch_id, reports), None

    def prepare(self) -> None:
        """Prepare the batch offered, if any (an ``apply_batch(meanwhile=…)``)."""
        if self._offered is None:
            return
        (batch_id, reports), self._offered = self._offered, None
        try:
            self._prepared = batch_id, prepare_batch(reports(), map_content=self.map_content)
        except Exception:
            # Not this batch's moment to fail: `take` gives nothing, so the batch is prepared
            # again when it is applied, and its error is raised there, as its own.
            self._prepared = None

    def take(self, batch_id: str) -> PreparedBatch | None:
        """What `batch_id` became, if it was the batch prepared."""
        if self._prepared is None or self._prepared[0] != batch_id:
            return None  # (a retry of the current batch leaves the next one's for it)
        prepared, self._prepared = self._prepared[1], None
        return prepared


def apply_batches(
    db: Any,
    batches: Iterable[tuple[str, Reports]],
    *,
    today: date,
    map_content: bool = True,
) -> Iterator[BatchResult]:
    """`apply_batch` over `batches` (id, reports) in order, each prepared while the one
    before it was being written."""
    ahead = Lookahead(map_content=map_content)
    pending = iter(batches)
    current = next(pending, None)
    while current is not None:
        batch_id, reports = current
        prepared = ahead.take(batch_id)
        following = next(pending, None)
        if following is not None:
            ahead.offer(following[0], _given(following[1]))
        yield apply_batch(
            db,
            batch_id,
            prepared or reports,
            today=today,
            map_content=map_content,
            meanwhile=ahead.prepare,
        )
        current = following


def _given(reports: Reports) -> Callable[[], Reports]:
    return lambda: reports
