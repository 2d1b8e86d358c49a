"""Long-running commands: the embedded service (``sluice run``), and the Celery worker and
scheduler of a scaled-out deployment (``sluice worker``, ``sluice scheduler``).

Stopping ``run`` and ``scheduler``: the first SIGTERM or SIGINT asks them to stop — no new work
is taken, the work in hand may finish (``run``: within ``--grace`` seconds, then it is cancelled
and returned to the queue) — and they exit 0. A second signal exits at once with code 130; the
leases of the units still in hand then expire, or are reclaimed as soon as the ledger sees that
their owner's connection is gone. ``worker`` leaves its signals to Celery (warm shutdown).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from enum import StrEnum
from types import FrameType, TracebackType
from typing import Annotated, Any

import typer

from sluice import render
from sluice.commands.common import (
    HostOpt,
    JsonOpt,
    PortOpt,
    TokenOpt,
    WorkersOpt,
    engine,
    out,
    print_json,
    progress,
    settings,
    state,
)

log = logging.getLogger("sluice.cli")

#: Exit code of a process stopped at once by a second signal (as after a SIGINT).
STOPPED_AT_ONCE = 130
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Within it, the first SIGTERM or SIGINT sets `stop`; the second ends the process."""

    def __init__(self, notice: str) -> None:
        self.stop = threading.Event()
        self.signalled = False
        self._notice = notice
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            # No cleanup on purpose: the ledger returns what this process held to the queue.
            os.write(2, b"sluice: stopped at once; the units in hand return to the queue\n")
            os._exit(STOPPED_AT_ONCE)
        self.signalled = True
        log.warning("%s; send the signal again to stop at once", self._notice)
        self.stop.set()


def exit_code(*, ok: bool, once: bool, signalled: bool) -> int:
    """0 after a stop asked for by a signal, or a ``--once`` pass whose report is ok; 1 after a
    pass that was not ok, or a service that stopped without being asked (its database gone)."""
    if signalled:
        return 0
    return 0 if once and ok else 1


def _finish(report: Any, as_json: bool, show: Callable[[], None], code: int) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        show()
    raise typer.Exit(code)


OnceOpt = Annotated[
    bool, typer.Option("--once", help="One pass over every feed, then exit when no work is left.")
]


def run(
    once: OnceOpt = False,
    workers: WorkersOpt = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="After a stop signal, how long the work in hand may take to finish.",
        ),
    ] = 30.0,
    full: Annotated[
        bool, typer.Option("--full", help="Syncs read every document again, not only what changed.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the service: scan every active feed on its schedule and load until stopped."""
    notice = f"stopping: finishing the work in hand (up to {grace:g} s)"
    with GracefulStop(notice) as stopping, engine(workers) as opened, progress() as bars:
        opened.sync_flow.full = full
        report = opened.serve(stopping.stop, once=once, grace_seconds=grace, progress=bars)
    code = exit_code(ok=report.ok, once=once, signalled=stopping.signalled)
    _finish(report, as_json, lambda: render.service_report(out, report), code)


class Pool(StrEnum):
    threads = "threads"
    prefork = "prefork"
    solo = "solo"


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, metavar="N", help="Tasks at once.")
    ] = 1,
    pool: Annotated[Pool, typer.Option("--pool", help="How tasks run at once.")] = Pool.threads,
) -> None:
    """Run a Celery worker that loads the units the scheduler hands out."""
    from sluice.runtime import workers  # Celery is imported only by the commands that use it

    code = workers.run_worker(
        settings(),
        concurrency=concurrency,
        pool=pool.value,
        loglevel=logging.getLevelName(state.log_level),
    )
    raise typer.Exit(code)


def scheduler(once: OnceOpt = False, as_json: JsonOpt = False) -> None:
    """Run the scheduler of Celery workers: hand due work to them until stopped."""
    from sluice.runtime import workers  # Celery is imported only by the commands that use it

    with GracefulStop("stopping: finishing the current pass") as stopping, engine() as opened:
        report = workers.run_scheduler(opened, stopping.stop, once=once)
    code = exit_code(ok=bool(report.ok), once=once, signalled=stopping.signalled)
    _finish(report, as_json, lambda: render.summary(out, "scheduler", report.as_dict()), code)


def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8420,
    token: TokenOpt = None,
) -> None:
    """Serve the dashboard, the JSON API, /metrics and health checks over HTTP."""
    from sluice.service.server import Extend
    from sluice.service.server import serve as run_server

    resolved = settings()
    extensions: list[Extend] = []
    if resolved.ichnaea.enabled:  # [ichnaea] enabled = true: the submit API on the same port
        from sluice.recipes.ichnaea import api as ichnaea

        extensions.append(ichnaea.extension(resolved.ichnaea))
    run_server(resolved, host=host, port=port, token=token or None, extensions=extensions)
