"""Redis Streams as the batcher's broker: a consumer group per batcher, ``XREADGROUP`` for new
messages and for the consumer's own pending ones (id ``0``), ``XACK`` after the write, and a
``MULTI`` of ``XADD`` to the dead-letter stream with ``XACK`` for a bad message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from sluice.errors import TransientError
from sluice.stream.broker import Message
from sluice.text import redact_secrets

#: The field of a stream entry that holds the message.
FIELD = b"data"
#: Entries per pipeline when publishing.
PUBLISH_BATCH = 1000
#: Renew or release a hold only while it is ours.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)


class RedisBroker:
    """Streams on the Redis at `url`, named ``<prefix><name>``."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        self.prefix = prefix
        self.client: redis.Redis = redis.Redis.from_url(url, socket_timeout=30)

    def key(self, stream: str) -> str:
        return self.prefix + stream

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.ConnectionError as exc:
            raise TransientError(f"Redis at {redact_secrets(self.url)}: {what}: {exc}") from exc
        except redis.TimeoutError as exc:
            raise TransientError(f"Redis at {redact_secrets(self.url)}: {what}: {exc}") from exc

    def prepare(self, stream: str, group: str) -> None:
        try:
            self._call(
                "XGROUP CREATE",
                self.client.xgroup_create,
                self.key(stream),
                group,
                id="0",
                mkstream=True,
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise TransientError(f"Redis: XGROUP CREATE {self.key(stream)}: {exc}") from exc

    def pending(self, stream: str, group: str, consumer: str, count: int) -> list[Message]:
        return self._read(stream, group, consumer, count, "0", None)

    def read(
        self, stream: str, group: str, consumer: str, count: int, block_seconds: float
    ) -> list[Message]:
        block = max(1, int(block_seconds * 1000))
        return self._read(stream, group, consumer, count, ">", block)

    def _read(
        self, stream: str, group: str, consumer: str, count: int, start: str, block: int | None
    ) -> list[Message]:
        answer = self._call(
            "XREADGROUP",
            self.client.xreadgroup,
            group,
            consumer,
            {self.key(stream): start},
            count=count,
            block=block,
        )
        found = []
        for _, entries in answer or []:
            for entry_id, fields in entries:
                # A pending entry deleted from the stream comes back with no fields.
                data = (fields or {}).get(FIELD, b"")
                found.append(Message(_text(entry_id), data))
        return found

    def ack(self, stream: str, group: str, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 10_000):
            self._call(
                "XACK", self.client.xack, self.key(stream), group, *ids[start : start + 10_000]
            )

    def dead_letter(
        self, stream: str, group: str, message: Message, reason: str, dead: str
    ) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(
            self.key(dead),
            {FIELD: message.data, b"id": message.id.encode(), b"reason": reason.encode()},
        )
        pipe.xack(self.key(stream), group, message.id)
        self._call("MULTI XADD XACK", pipe.execute)

    def publish(self, stream: str, payloads: Iterable[bytes]) -> int:
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(self.key(stream), {FIELD: payload})
            count += 1
            if count % PUBLISH_BATCH == 0:
                self._call("XADD", pipe.execute)
        self._call("XADD", pipe.execute)
        return count

    def hold(self, stream: str, consumer: str, token: str, seconds: float) -> bool:
        key = self.key(f"{stream}:batcher:{consumer}")
        millis = max(1, int(seconds * 1000))
        if self._call("SET NX", self.client.set, key, token, nx=True, px=millis):
            return True
        return bool(self._call("EVAL", self.client.eval, _RENEW, 1, key, token, millis))

    def holder(self, stream: str, consumer: str) -> str | None:
        found = self._call("GET", self.client.get, self.key(f"{stream}:batcher:{consumer}"))
        return None if found is None else _text(found)

    def release(self, stream: str, consumer: str, token: str) -> None:
        key = self.key(f"{stream}:batcher:{consumer}")
        self._call("EVAL", self.client.eval, _RELEASE, 1, key, token)

    def close(self) -> None:
        self.client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
