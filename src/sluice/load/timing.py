"""Seconds spent in each phase of a load (stage, classify, update, insert...), reported with
the load so that slow phases are visible without a profiler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Phases(dict[str, float]):
    """Accumulated seconds per phase name."""

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0.0) + time.perf_counter() - started, 4)
