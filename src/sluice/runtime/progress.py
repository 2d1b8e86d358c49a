"""Progress of long commands: bars on a terminal, plain log lines otherwise.

Both report, per object, the bytes read from the store and the lines loaded so far. The outcome
of each object is not theirs to print: the runner logs one line per unit (logger
``sluice.progress``), which the command's log handler prints above the bars.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

log = logging.getLogger("sluice.progress")

#: Seconds between two log lines about the same object.
LOG_EVERY = 5.0


class Progress:
    """Progress of a command; the base class reports nothing."""

    def start(self, load_id: int, label: str, total_bytes: int) -> None:
        """An object starts loading."""

    def advance(self, load_id: int, bytes_read: int, lines: int) -> None:
        """Bytes read from the store and lines loaded so far for one object."""

    def finish(self, load_id: int, summary: str) -> None:
        """An object is done (loaded, errored or retried later)."""

    def latest(self) -> dict[int, tuple[int, int]]:
        """The last reported (bytes, lines) per object still loading."""
        return {}

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop displaying."""


class _Tracking(Progress):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, tuple[int, int]] = {}
        self._labels: dict[int, str] = {}

    def start(self, load_id: int, label: str, total_bytes: int) -> None:
        with self._lock:
            self._latest[load_id] = (0, 0)
            self._labels[load_id] = label

    def advance(self, load_id: int, bytes_read: int, lines: int) -> None:
        with self._lock:
            self._latest[load_id] = (bytes_read, lines)

    def finish(self, load_id: int, summary: str) -> None:
        with self._lock:
            self._latest.pop(load_id, None)
            self._labels.pop(load_id, None)

    def latest(self) -> dict[int, tuple[int, int]]:
        with self._lock:
            return dict(self._latest)


class LogProgress(_Tracking):
    """One log line per object every few seconds, and one when it is done."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[int, float] = {}
        self._totals: dict[int, int] = {}

    def start(self, load_id: int, label: str, total_bytes: int) -> None:
        super().start(load_id, label, total_bytes)
        self._last[load_id] = time.monotonic()
        self._totals[load_id] = total_bytes
        log.info("load %d: %s (%s)", load_id, label, _size(total_bytes))

    def advance(self, load_id: int, bytes_read: int, lines: int) -> None:
        super().advance(load_id, bytes_read, lines)
        now = time.monotonic()
        if now - self._last.get(load_id, 0.0) >= LOG_EVERY:
            self._last[load_id] = now
            total = self._totals.get(load_id, 0)
            log.info(
                "load %d: %s of %s read, %d lines", load_id, _size(bytes_read), _size(total), lines
            )

    def finish(self, load_id: int, summary: str) -> None:
        # The runner logs the outcome of every unit itself.
        super().finish(load_id, summary)
        self._last.pop(load_id, None)


class BarProgress(_Tracking):
    """A live bar per object while it loads, on a terminal; a finished object's bar makes way
    for the runner's log line about it. Pass the console the log handler prints on, so that
    log lines appear above the bars instead of through them."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        # Imported here: bars are drawn on a terminal only, and this costs every command's start.
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBar

        self._bars = RichBar(
            TextColumn("{task.description}", markup=False),  # object keys are not markup
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[lines]:>12,} lines"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[int, TaskID] = {}
        self._bars.start()

    def start(self, load_id: int, label: str, total_bytes: int) -> None:
        super().start(load_id, label, total_bytes)
        self._tasks[load_id] = self._bars.add_task(label, total=max(total_bytes, 1), lines=0)

    def advance(self, load_id: int, bytes_read: int, lines: int) -> None:
        super().advance(load_id, bytes_read, lines)
        task = self._tasks.get(load_id)
        if task is not None:
            self._bars.update(task, completed=bytes_read, lines=lines)

    def finish(self, load_id: int, summary: str) -> None:
        super().finish(load_id, summary)
        task = self._tasks.pop(load_id, None)
        if task is not None:
            self._bars.remove_task(task)

    def close(self) -> None:
        self._bars.stop()


def make_progress(show: bool | None = None, console: Console | None = None) -> Progress:
    """Bars when stderr is a terminal (or `show` is True), on `console` (by default a new
    console on stderr); log lines otherwise."""
    if show is None:
        show = sys.stderr.isatty()
    if show:
        from rich.console import Console

        return BarProgress(console or Console(stderr=True))
    return LogProgress()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
