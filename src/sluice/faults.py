"""Fault points for crash and failure tests (unset, each costs one environment lookup).

``SLUICE_FAULT_PAUSE=<point>`` makes a process stop at that point of a load, print
``sluice-fault: paused at <point>`` on stderr, and wait there until it is killed. Tests use it to
SIGKILL an import at an exact moment (during COPY, during the merge, just before commit; for a
sync, ``sync``: a scope's changes written, not committed) and check that re-running it gives
exactly the rows of a clean run.

``SLUICE_FAULT_UNREADABLE=<suffix>[,<suffix>...]`` makes reads of the objects whose key ends
with one of the suffixes fail as a transient store error, as a network failure or a throttled
request would; tests use it to prove that an unreadable document deletes nothing.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "SLUICE_FAULT_PAUSE"
UNREADABLE = "SLUICE_FAULT_UNREADABLE"
POINTS = ("copy", "merge", "commit", "serving", "sync")


def pause(point: str) -> None:
    if os.environ.get(ENV) != point:
        return
    print(f"sluice-fault: paused at {point}", file=sys.stderr, flush=True)
    while True:  # until the test kills us
        time.sleep(3600)


def unreadable(key: str) -> bool:
    """Whether reading `key` must fail (see SLUICE_FAULT_UNREADABLE)."""
    suffixes = os.environ.get(UNREADABLE, "")
    return any(key.endswith(suffix) for suffix in suffixes.split(",") if suffix)
