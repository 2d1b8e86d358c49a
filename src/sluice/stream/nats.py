"""NATS JetStream as the batcher's broker (``nats-py``), behind the same synchronous `Broker`
interface as Redis: the client runs on an event loop of its own.

The stream ``<prefix><name>`` takes the subject of the same name; the batcher reads it through
a durable pull consumer (the group) whose acknowledgements are cumulative (``AckPolicy.ALL``):
one acknowledgement of a batch's last message acknowledges the whole batch at once, as
``XACK`` of all its ids does on Redis. What a consumer holds unacknowledged is then the range
(ack floor, last delivered]; `pending` reads that range back from the stream by sequence, so a
restarted batcher rewrites the batch it held without waiting for redelivery. Redeliveries of
that range are acknowledged on arrival and dropped: their object exists. A dead letter is
published to ``<key>.dead`` with a ``Nats-Msg-Id`` (JetStream drops a duplicate of it) and
acknowledged with the batch around it. The hold is a key of the KV bucket ``sluice-batchers``
whose entries lapse after 30 s.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import nats
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StreamConfig
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError

from sluice.errors import ConfigError, TransientError
from sluice.stream.broker import Message

T = TypeVar("T")
HOLDS = "sluice-batchers"
#: Per stream and group: the ranges written as objects and not yet all acknowledged.
RANGES = "sluice-batch-ranges"
HOLD_SECONDS = 30.0
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def seq_id(seq: int) -> str:
    """A stream sequence as a message id that sorts as a string."""
    return f"{seq:020d}"


class NatsBroker:
    """Streams of the JetStream at `url`, named ``<prefix><name>``."""

    def __init__(self, url: str, prefix: str = "", *, max_records: int, ack_wait: float) -> None:
        self.url = url
        self.prefix = prefix
        #: At most one batch delivered and unacknowledged (see the batcher).
        self.max_records = max_records
        #: Longer than a batch may be held (its age limit), or the broker would redeliver it.
        self.ack_wait = ack_wait
        self._loop = asyncio.new_event_loop()
        self._nc: Any = self._run(nats.connect(url, connect_timeout=5, max_reconnect_attempts=3))
        self._js = self._nc.jetstream()
        self._subs: dict[str, Any] = {}
        self._held: dict[str, Msg] = {}
        self._recovered: dict[str, int] = {}
        self._early: dict[str, list[Message]] = {}

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.run_until_complete(coro)
        except (NatsError, OSError) as exc:
            raise TransientError(f"NATS at {self.url}: {type(exc).__name__}: {exc}") from exc

    def key(self, stream: str) -> str:
        key = self.prefix + stream
        if not _NAME.fullmatch(key):
            raise ConfigError(f"a JetStream stream name is letters, digits, - and _: {key!r}")
        return key

    def prepare(self, stream: str, group: str) -> None:
        key = self.key(stream)
        self._run(self._prepare(key, group))

    async def _prepare(self, key: str, group: str) -> None:
        for name, subject in ((key, key), (f"{key}-dead", f"{key}.dead")):
            try:
                await self._js.stream_info(name)
            except NotFoundError:
                await self._js.add_stream(StreamConfig(name=name, subjects=[subject]))
        if key not in self._subs:
            config = ConsumerConfig(
                durable_name=group,
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.ALL,
                # One batch in hand, plus a range read back after a crash that waits for the
                # next acknowledgement to cover it.
                max_ack_pending=2 * self.max_records,
                ack_wait=self.ack_wait,
            )
            self._subs[key] = await self._js.pull_subscribe(
                key, durable=group, stream=key, config=config
            )

    def pending(self, stream: str, group: str, consumer: str, count: int) -> list[Message]:
        return self._run(self._pending(self.key(stream), group, count))

    async def _pending(self, key: str, group: str, count: int) -> list[Message]:
        info = await self._js.consumer_info(key, group)
        # Past what this process read back already: that is written, only not acknowledged.
        first = max(info.ack_floor.stream_seq, self._recovered.get(key, 0)) + 1
        last = min(info.delivered.stream_seq, first + count - 1)
        # A range written as one object is read back as that one object again.
        for start, end in await self._written(key, group):
            if end < first:
                continue
            last = min(last, start - 1) if start > first else min(info.delivered.stream_seq, end)
            break
        found = []
        for seq in range(first, last + 1):
            try:
                raw = await self._js.get_msg(key, seq)
            except NotFoundError:
                continue  # deleted from the stream since
            found.append(Message(seq_id(seq), raw.data or b""))
        if found:
            self._recovered[key] = max(self._recovered.get(key, 0), last)
        return found

    def read(
        self, stream: str, group: str, consumer: str, count: int, block_seconds: float
    ) -> list[Message]:
        key = self.key(stream)
        return self._run(self._read(key, count, block_seconds))

    async def _read(self, key: str, count: int, block: float) -> list[Message]:
        early = self._early.setdefault(key, [])
        if not early:
            try:
                fetched = await self._subs[key].fetch(batch=max(1, count), timeout=max(0.05, block))
            except (NatsTimeout, TimeoutError):
                fetched = []
            through = self._recovered.get(key, 0)
            for msg in fetched:
                seq = msg.metadata.sequence.stream
                if seq <= through:
                    await msg.ack()  # in the object `pending` rewrote
                    continue
                self._held[seq_id(seq)] = msg
                early.append(Message(seq_id(seq), msg.data))
        # A fetch may hand over more than it asked for (the answers of an earlier pull that
        # timed out): the batch takes what it lacks, the rest waits here for the next one.
        taken, early[:] = early[:count], early[count:]
        return taken

    def ack(self, stream: str, group: str, ids: Sequence[str]) -> None:
        """Record the range of `ids` as written, then acknowledge through its last id
        (cumulative). Ids read back by `pending` have no delivery to acknowledge: the next
        acknowledgement covers them, and until then their range stays recorded."""
        if not ids:
            return
        key = self.key(stream)
        self._run(self._ack(key, group, ids))

    async def _ack(self, key: str, group: str, ids: Sequence[str]) -> None:
        ranges = await self._written(key, group)
        ranges.append((int(min(ids)), int(max(ids))))
        held = [i for i in ids if i in self._held]
        floor = 0
        if held:
            await self._put_written(key, group, ranges)
            last = max(held)
            await self._held[last].ack_sync()
            floor = int(last)
        else:
            floor = (await self._js.consumer_info(key, group)).ack_floor.stream_seq
        await self._put_written(key, group, [r for r in ranges if r[1] > floor])
        for i in ids:
            self._held.pop(i, None)

    async def _written(self, key: str, group: str) -> list[tuple[int, int]]:
        kv = await self._ranges()
        try:
            entry = await kv.get(f"{key}.{group}")
        except KeyNotFoundError:
            return []
        return sorted((int(a), int(b)) for a, b in json.loads(entry.value or b"[]"))

    async def _put_written(self, key: str, group: str, ranges: list[tuple[int, int]]) -> None:
        kv = await self._ranges()
        await kv.put(f"{key}.{group}", json.dumps(sorted(set(ranges))).encode())

    async def _ranges(self) -> Any:
        try:
            return await self._js.key_value(RANGES)
        except NotFoundError:
            return await self._js.create_key_value(KeyValueConfig(bucket=RANGES))

    def dead_letter(
        self, stream: str, group: str, message: Message, reason: str, dead: str
    ) -> None:
        key = self.key(stream)
        headers = {
            "Nats-Msg-Id": f"{key}:{message.id}",
            "Sluice-Id": message.id,
            "Sluice-Reason": reason[:500],
        }
        self._run(self._js.publish(f"{key}.dead", message.data, headers=headers))

    def publish(self, stream: str, payloads: Iterable[bytes]) -> int:
        key = self.key(stream)
        return self._run(self._publish(key, payloads))

    async def _publish(self, key: str, payloads: Iterable[bytes]) -> int:
        try:
            await self._js.stream_info(key)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(name=key, subjects=[key]))
        count = 0
        pending = []
        for payload in payloads:
            pending.append(self._js.publish(key, payload))
            count += 1
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        return count

    def hold(self, stream: str, consumer: str, token: str, seconds: float) -> bool:
        return self._run(self._hold(f"{self.key(stream)}.{consumer}", token))

    async def _holds(self) -> Any:
        try:
            return await self._js.key_value(HOLDS)
        except NotFoundError:
            return await self._js.create_key_value(KeyValueConfig(bucket=HOLDS, ttl=HOLD_SECONDS))

    async def _hold(self, name: str, token: str) -> bool:
        kv = await self._holds()
        try:
            await kv.create(name, token.encode())
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(name)
        except KeyNotFoundError:
            return False
        if entry.value != token.encode():
            return False
        await kv.update(name, token.encode(), last=entry.revision)
        return True

    def holder(self, stream: str, consumer: str) -> str | None:
        return self._run(self._holder(f"{self.key(stream)}.{consumer}"))

    async def _holder(self, name: str) -> str | None:
        kv = await self._holds()
        try:
            entry = await kv.get(name)
        except KeyNotFoundError:
            return None
        return bytes(entry.value or b"").decode() or None

    def release(self, stream: str, consumer: str, token: str) -> None:
        self._run(self._release(f"{self.key(stream)}.{consumer}", token))

    async def _release(self, name: str, token: str) -> None:
        kv = await self._holds()
        try:
            entry = await kv.get(name)
        except KeyNotFoundError:
            return
        if entry.value == token.encode():
            await kv.delete(name, last=entry.revision)

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._nc.close())
        except (NatsError, OSError):
            pass  # closing: nothing is left to lose, the broker keeps what was not acknowledged
        finally:
            self._loop.close()
