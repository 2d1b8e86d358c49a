"""Documents fetched ahead of their use by a bounded set of threads, the most urgent first.

A sync queues every document it will read as soon as the listing names it (page by page, while
the listing goes on), and uses them in the order of its tree: the queue is kept in that order,
not in the order the keys were queued, so that the documents the sync needs next are the next
fetched whatever the listing's order. At most `workers` fetches run at once; what waits is a
key in a heap.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

#: How urgent a key is: smaller first (ties: the order queued).
Order = Callable[[str], Any]


class Fetcher:
    """Runs `load(key)` for queued keys on up to `workers` threads, in `order`."""

    def __init__(self, load: Callable[[str], None], workers: int, order: Order | None) -> None:
        self._load = load
        self._workers = workers
        self._order = order
        self._heap: list[tuple[bool, Any, int, str, Future[None]]] = []
        self._seq = itertools.count()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, key: str, *, urgent: bool = False) -> Future[None]:
        """Queue `key`; an `urgent` one (a document the sync waits for now) goes first."""
        future: Future[None] = Future()
        rank = self._order(key) if self._order is not None and not urgent else 0
        with self._ready:
            if self._closed:
                raise RuntimeError("the fetcher is closed")
            heapq.heappush(self._heap, (not urgent, rank, next(self._seq), key, future))
            if len(self._threads) < self._workers:
                # Daemon threads: a fetcher left open never holds the process at its exit.
                thread = threading.Thread(target=self._work, name="sluice-get", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._heap and not self._closed:
                    self._ready.wait()
                if not self._heap:
                    return
                *_, key, future = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                self._load(key)
            except BaseException as exc:  # the caller sees it where it waits for the key
                future.set_exception(exc)
            else:
                future.set_result(None)

    def close(self) -> None:
        """Cancel what has not started, let the fetches in flight end, and stop the threads."""
        with self._ready:
            self._closed = True
            queued, self._heap = self._heap, []
            self._ready.notify_all()
        for *_, future in queued:
            future.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
