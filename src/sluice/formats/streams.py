"""Small helpers for byte streams: counting what was read, reading ahead in a thread."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_DONE = object()


@dataclass
class Meter:
    """Counts the bytes that went through a stream, readable from any thread."""

    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, stream: Iterable[bytes]) -> Iterator[bytes]:
        for piece in stream:
            with self._lock:
                self.total += len(piece)
            yield piece

    def reset(self) -> None:
        with self._lock:
            self.total = 0


def prefetch(stream: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """Iterate `stream` in a background thread, `depth` pieces ahead, so that reading from the
    store (network, decompression) overlaps with sending to the database. Errors raised by the
    stream are raised again in the consumer; closing the consumer stops the reader."""
    pieces: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in stream:
                if stop.is_set():
                    return
                pieces.put(piece)
            pieces.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            pieces.put(exc)

    reader = threading.Thread(target=produce, name="sluice-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = pieces.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                pieces.get(timeout=0.1)
