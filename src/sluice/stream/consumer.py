"""The stream batcher under ``sluice run`` and ``sluice worker``: one runtime `Consumer` per
declared stream (``[streams.NAME]``), in a thread of its own until the process stops.

Each run holds its stream (see `Batcher`): with several processes, one batches a stream and
the others wait for the hold, so a consumer's pending messages are only ever read back by the
process that batches them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from sluice.store import S3Options, locate
from sluice.stream.batcher import Batcher, BatchReport, StreamBusy
from sluice.stream.connect import connect
from sluice.stream.options import StreamDeclaration

log = logging.getLogger(__name__)

#: Seconds between two tries at a stream another process holds.
BUSY_WAIT = 5.0
#: With ``once`` (``sluice run --once``): write what is held after this long without a message.
ONCE_IDLE = 1.0


class StreamConsumer:
    """Batches one declared stream into `incoming` (a store URL with a prefix)."""

    def __init__(self, declared: StreamDeclaration, incoming: str, s3: S3Options) -> None:
        self.declared = declared
        self.incoming = incoming
        self.s3 = s3

    @property
    def name(self) -> str:
        return f"stream {self.declared.name}"

    def status(self) -> dict[str, Any] | None:
        """Nothing beside the ledger: the objects it wrote are the routing's loads."""
        return None

    def run(self, stop: threading.Event, *, once: bool) -> BatchReport | None:
        options = self.declared.options
        if once:
            options = replace(options, until_idle=ONCE_IDLE)
        store, prefix = locate(self.incoming, self.s3, create=True)
        declared = self.declared
        url = declared.nats_url if declared.broker == "nats" else declared.redis_url
        broker = connect(declared.broker, url, declared.prefix, options)
        try:
            while not stop.is_set():
                try:
                    return Batcher(broker, store, prefix, self.declared.name, options).run(stop)
                except StreamBusy as exc:
                    if once:
                        log.info("%s: %s; skipped", self.name, exc)
                        return None
                    stop.wait(BUSY_WAIT)
            return None
        finally:
            broker.close()
