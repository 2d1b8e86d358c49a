"""The stream batcher: messages of a broker stream into gzip JSON-lines objects of Incoming.

A batch is written once it holds `max_records` messages or its first message is `max_age`
old, whichever comes first, and its messages are acknowledged only after the object is
written. The object is named after the ids of its first and last message
(``<first>_<last>.jsonl.gz``), and the batcher never holds more unacknowledged messages than
one batch (it asks the broker for at most what the batch still lacks). So after a crash between
the write and the acknowledgement, the consumer's pending messages are exactly the batch it
wrote: a restart reads them back first and writes the same object with the same bytes (gzip
without a timestamp) before anything new.

A message that is not JSON goes to the dead-letter stream (``<name>:dead``) with the reason,
acknowledged in the same broker transaction, and is counted; it never stops the batcher.
Memory stays bounded: a batch is compressed into a temporary file as it grows.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import psutil

from sluice import faults
from sluice.errors import TerminalError, TransientError
from sluice.store import Store
from sluice.stream.broker import Broker, Message, id_part
from sluice.stream.options import BatchOptions

log = logging.getLogger(__name__)

#: The fault point between an object's write and its acknowledgement (crash tests).
FLUSHED = "stream-flushed"
READ_CHUNK = 1 << 20
#: Seconds a batcher's hold on its stream lasts unless renewed (it renews between reads): a
#: batcher killed outright gives its stream up to another process after this long.
HOLD_SECONDS = 30.0


class StreamBusy(TerminalError):
    """Another process batches the stream as the same consumer."""


@dataclass
class BatchReport:
    stream: str
    messages: int = 0
    dead_lettered: int = 0
    #: Pending messages of an earlier run written again on start.
    recovered: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "messages": self.messages,
            "dead_lettered": self.dead_lettered,
            "recovered": self.recovered,
            "objects": self.objects,
            "seconds": round(self.seconds, 3),
        }


class Spool:
    """One batch being built: its ids, and its lines compressed into a temporary file."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        #: Messages dead-lettered meanwhile: acknowledged with the batch (a broker whose
        #: acknowledgements are cumulative cannot acknowledge them alone).
        self.dead: list[str] = []
        self.started = 0.0
        # Closed by close(): a spool lives across reads, not within one block.
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        # mtime=0 and a fixed level: the same messages always make the same bytes.
        self._gzip = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=6, mtime=0)

    def add(self, message: Message, line: bytes, now: float) -> None:
        if not self.ids:
            self.started = now
        self.ids.append(message.id)
        self._gzip.write(line + b"\n")

    def chunks(self) -> Iterator[bytes]:
        self._gzip.close()
        self._file.seek(0)
        while piece := self._file.read(READ_CHUNK):
            yield piece

    def close(self) -> None:
        self._gzip.close()
        self._file.close()


def json_line(data: bytes) -> bytes | str:
    """The message as one JSON line, or why it is not JSON."""
    if not data.strip():
        return "empty message"
    try:
        # Decoded first: json.loads would guess UTF-16 or UTF-32 from the first bytes.
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    except ValueError as exc:
        return f"not JSON: {exc}"
    stripped = data.strip()
    if b"\n" in stripped or b"\r" in stripped:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return stripped


class Batcher:
    """Batches the stream `name` of `broker` into `store` below `prefix`."""

    def __init__(
        self,
        broker: Broker,
        store: Store,
        prefix: str,
        name: str,
        options: BatchOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.store = store
        base = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.folder = f"{base}{options.key_prefix}{name}/"
        self.name = name
        self.options = options
        self.clock = clock

    def object_key(self, first: str, last: str) -> str:
        return f"{self.folder}{id_part(first)}_{id_part(last)}.jsonl.gz"

    def run(self, stop: threading.Event | None = None) -> BatchReport:
        """Recover what an earlier run left pending, then batch until stopped (or idle)."""
        stop = stop or threading.Event()
        started = self.clock()
        report = BatchReport(self.name)
        o = self.options
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._take_hold(token)
        try:
            self._run(stop, report, token)
        finally:
            self.broker.release(self.name, o.consumer, token)
            report.seconds = self.clock() - started
        return report

    def _take_hold(self, token: str) -> None:
        o = self.options
        if self.broker.hold(self.name, o.consumer, token, HOLD_SECONDS):
            return
        holder = self.broker.holder(self.name, o.consumer)
        if holder and _dead_here(holder):
            # Its process is gone (killed on this machine): no need to wait for the hold to lapse.
            self.broker.release(self.name, o.consumer, holder)
            if self.broker.hold(self.name, o.consumer, token, HOLD_SECONDS):
                return
        raise StreamBusy(
            f"stream {self.name} is being batched by another process as consumer "
            f"{o.consumer!r} (its hold lasts {HOLD_SECONDS:.0f} s after it stops)"
        )

    def _run(self, stop: threading.Event, report: BatchReport, token: str) -> None:
        o = self.options
        self.broker.prepare(self.name, o.group)
        self._recover(report)
        spool = Spool()
        last_arrival = self.clock()
        try:
            renewed = self.clock()
            while not stop.is_set():
                if self.clock() - renewed >= HOLD_SECONDS / 6:
                    if not self.broker.hold(self.name, o.consumer, token, HOLD_SECONDS):
                        raise TransientError(f"stream {self.name}: the hold on it was lost")
                    renewed = self.clock()
                wait = self._wait(spool, last_arrival)
                messages = self.broker.read(
                    self.name, o.group, o.consumer, o.max_records - len(spool.ids), wait
                )
                now = self.clock()
                if messages:
                    last_arrival = now
                self._take(spool, messages, report, now)
                idle = o.until_idle is not None and now - last_arrival >= o.until_idle
                full = len(spool.ids) >= o.max_records
                old = bool(spool.ids) and now - spool.started >= o.max_age_seconds
                if full or old or (idle and (spool.ids or spool.dead)):
                    self._flush(spool, report)
                    spool.close()
                    spool = Spool()
                if idle:
                    break
            if spool.ids or spool.dead:
                self._flush(spool, report)  # stopped: write what is held rather than re-read it
        finally:
            spool.close()

    def _wait(self, spool: Spool, last_arrival: float) -> float:
        """Seconds to block: no longer than the batch's age limit or the idle limit allow."""
        o = self.options
        now = self.clock()
        wait = o.block_seconds
        if spool.ids:
            wait = min(wait, spool.started + o.max_age_seconds - now)
        if o.until_idle is not None:
            wait = min(wait, last_arrival + o.until_idle - now)
        return max(0.001, wait)

    def _recover(self, report: BatchReport) -> None:
        """Write again the batch an earlier run of this consumer held unacknowledged."""
        o = self.options
        while True:
            pending = self.broker.pending(self.name, o.group, o.consumer, o.max_records)
            if not pending:
                return
            spool = Spool()
            try:
                self._take(spool, pending, report, self.clock())
                report.recovered += len(spool.ids)
                if spool.ids:
                    log.info(
                        "stream %s: writing %d pending message(s) of an earlier run again",
                        self.name,
                        len(spool.ids),
                    )
                if spool.ids or spool.dead:
                    self._flush(spool, report)
            finally:
                spool.close()

    def _take(self, spool: Spool, messages: list[Message], report: BatchReport, now: float) -> None:
        for message in messages:
            line = json_line(message.data)
            if isinstance(line, str):
                self.broker.dead_letter(
                    self.name,
                    self.options.group,
                    message,
                    line,
                    self.name + self.options.dead_suffix,
                )
                report.dead_lettered += 1
                spool.dead.append(message.id)
                log.warning("stream %s: message %s dead-lettered: %s", self.name, message.id, line)
                continue
            spool.add(message, line, now)

    def _flush(self, spool: Spool, report: BatchReport) -> None:
        if not spool.ids:
            self.broker.ack(self.name, self.options.group, spool.dead)
            return
        key = self.object_key(spool.ids[0], spool.ids[-1])
        info = self.store.put(key, spool.chunks())
        faults.pause(FLUSHED)
        self.broker.ack(self.name, self.options.group, sorted([*spool.ids, *spool.dead]))
        report.messages += len(spool.ids)
        report.objects.append(
            {
                "key": key,
                "messages": len(spool.ids),
                "first": spool.ids[0],
                "last": spool.ids[-1],
                "size": info.size,
            }
        )
        log.info("stream %s: %d message(s) → %s", self.name, len(spool.ids), key)


def _dead_here(token: str) -> bool:
    """Whether a hold's token names a process of this machine that no longer runs."""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
