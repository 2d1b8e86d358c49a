"""Log lines of an outage, at most one per interval: a service answering thousands of requests
a second while its database or Redis is away must not write a line for each of them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Throttled:
    """Logs a warning at most once per `seconds` (with how many were held back since)."""

    def __init__(
        self,
        log: logging.Logger,
        seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.seconds = seconds
        self.clock = clock
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: object) -> None:
        with self._lock:
            now = self.clock()
            if now < self._next:
                self._held += 1
                return
            held, self._held, self._next = self._held, 0, now + self.seconds
        if held:
            message += " (and %d more like it)"
            args = (*args, held)
        self.log.warning(message, *args)
