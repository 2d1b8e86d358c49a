"""One export's deliveries: take a batch of its stream, send it with retries and backoff,
then acknowledge it — or, after `max_attempts` tries (or at once, for an error that retrying
cannot mend), move it to the export's dead letters with the reason."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from sluice.errors import SluiceError, TerminalError
from sluice.fanout.configs import ExportConfig
from sluice.fanout.exporters import Batch, Exporter, LooksAhead, parse_item
from sluice.fanout.names import EXPORT_GROUP, Names
from sluice.fanout.scripts import BURY, DONE, TAKE, TOUCH
from sluice.text import redact_secrets

log = logging.getLogger(__name__)

#: Batches one step delivers at most when its exporter looks ahead: a backlog is worked off
#: in runs, while the fan-out of new entries waits no longer than a few batches.
LOOKAHEAD = 8


@dataclass(frozen=True)
class RetryOptions:
    #: Pause after the n-th failed try (0-based): base × (n² + 1) s — 1, 2, 5 s as the seed.
    base_seconds: float = 1.0
    #: A batch whose consumer was silent this long is taken over by another.
    claim_idle_seconds: float = 120.0


class Delivery:
    """The deliveries of one export config by one consumer."""

    def __init__(
        self,
        client: redis.Redis,
        names: Names,
        config: ExportConfig,
        exporter: Exporter,
        consumer: str,
        retry: RetryOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.names = names
        self.config = config
        self.exporter = exporter
        self.consumer = consumer
        self.retry = retry
        self.clock = clock
        self.stream = names.export(config.name)
        self._take_script = client.register_script(TAKE)
        #: The batch told ahead to the exporter, taken but not yet delivered.
        self._held: tuple[Batch, str] | None = None
        self._touch = client.register_script(TOUCH)
        self._done = client.register_script(DONE)
        self._bury = client.register_script(BURY)

    def step(self, stop: threading.Event, *, force: bool = False) -> int:
        """Deliver (or dead-letter) one batch if one is ready; the reports handled, 0 if none.
        With `force`, whatever waits is a batch, however few and young.

        An exporter that looks ahead (`exporters.LooksAhead`) is told the next ready batch
        before the current one is sent, and then gets it, up to `LOOKAHEAD` batches a step:
        it prepares the next batch while it waits on the current one's destination."""
        current = self._take(force)
        handled = 0
        for chained in range(1, LOOKAHEAD + 1):
            if current is None:
                break
            batch, last = current
            self._held = None
            if chained < LOOKAHEAD and isinstance(self.exporter, LooksAhead) and not stop.is_set():
                self._held = self._take(force)
                if self._held is not None:
                    self.exporter.ahead(self._held[0])
            self._deliver(batch, last, stop)
            handled += len(batch.items)
            current = self._held
        return handled

    def _take(self, force: bool) -> tuple[Batch, str] | None:
        """The next ready batch, now in this consumer's hands, and its last entry id."""
        taken = self._take_script(
            keys=[self.stream, self.names.batches(self.config.name)],
            args=[
                EXPORT_GROUP,
                self.consumer,
                self.config.batch,
                int(self.config.max_age_seconds * 1000),
                int(self.clock() * 1000),
                int(self.retry.claim_idle_seconds * 1000),
                1 if force else 0,
            ],
        )
        if not taken:
            return None
        first, last, entries = taken[0].decode(), taken[1].decode(), taken[2]
        items = [parse_item(_fields(raw)) for _, raw in entries if raw]
        return Batch(self.config.name, first, items), last

    def _deliver(self, batch: Batch, last: str, stop: threading.Event) -> None:
        name = self.config.name
        attempts_key = self.names.attempts(name)
        while True:
            attempt = int(self.client.hincrby(attempts_key, batch.batch_id, 1))
            if attempt > self.config.max_attempts:
                # Tried the most times already, by a consumer that died before it could say so.
                said = self.client.hget(attempts_key, f"{batch.batch_id}:reason")
                reason = said.decode() if isinstance(said, bytes) else "the tries ran out"
                self._give_up(batch, last, attempt - 1, reason)
                return
            try:
                self.exporter.send(batch)
            except TerminalError as exc:
                self._give_up(batch, last, attempt, redact_secrets(str(exc)))
                return
            except Exception as exc:  # any other failure is a failed try, retried
                reason = redact_secrets(_said(exc))
                self.client.hset(attempts_key, f"{batch.batch_id}:reason", reason)
                if attempt >= self.config.max_attempts:
                    self._give_up(batch, last, attempt, reason)
                    return
                log.warning(
                    "export %s: batch %s (%d reports), try %d of %d failed: %s",
                    name,
                    batch.batch_id,
                    len(batch.items),
                    attempt,
                    self.config.max_attempts,
                    reason,
                )
                self.client.hincrby(self.names.delivery, f"{name}:retried", len(batch.items))
                if self._pause(batch, last, attempt, stop):
                    return  # stopping: the batch stays in hand, taken over after a while
                continue
            self._end(self._done, batch, last, [])
            return

    def _pause(self, batch: Batch, last: str, attempt: int, stop: threading.Event) -> bool:
        """Wait before the next try, keeping the batch in hand; True if told to stop."""
        n = attempt - 1
        until = time.monotonic() + self.retry.base_seconds * (n * n + 1)
        while (left := until - time.monotonic()) > 0:
            if stop.wait(min(left, 5.0)):
                return True
            for held, held_last in [(batch, last), *([self._held] if self._held else [])]:
                self._touch(
                    keys=[self.stream],
                    args=[EXPORT_GROUP, self.consumer, held.batch_id, held_last],
                )
        return False

    def _give_up(self, batch: Batch, last: str, attempts: int, reason: str) -> None:
        log.error(
            "export %s: batch %s (%d reports) goes to the dead letters after %d tries: %s",
            self.config.name,
            batch.batch_id,
            len(batch.items),
            attempts,
            reason,
        )
        self._end(
            self._bury,
            batch,
            last,
            [reason, attempts, int(self.clock() * 1000)],
            dead=self.names.dead(self.config.name),
        )

    def _end(
        self, script: Script, batch: Batch, last: str, extra: list[str | int], dead: str = ""
    ) -> None:
        name = self.config.name
        keys = [self.stream, self.names.batches(name), self.names.attempts(name)]
        keys.append(self.names.delivery)
        if dead:
            keys.append(dead)
        ended = script(keys=keys, args=[EXPORT_GROUP, batch.batch_id, last, name, *extra])
        if int(ended) < 0:
            log.warning(
                "export %s: batch %s was ended by another consumer meanwhile",
                name,
                batch.batch_id,
            )


def _said(exc: Exception) -> str:
    """An error as a dead letter's reason: sluice's own say what they are; others (an
    exporter's bug, a library's error) are named by their type too."""
    return str(exc) if isinstance(exc, SluiceError) else f"{type(exc).__name__}: {exc}"


def _fields(raw: object) -> dict[bytes, bytes]:
    """A stream entry's fields, as a Lua script returns them (a flat list) or redis-py does."""
    if isinstance(raw, dict):
        return raw
    assert isinstance(raw, list)
    return {raw[i]: raw[i + 1] for i in range(0, len(raw), 2)}
