"""The durable intake queue: a Redis Stream, with back-pressure and counters.

Names, under one prefix (``sluice:ichnaea`` for the Ichnaea recipe):

- ``<prefix>:intake`` — the stream. One entry per accepted report, fields ``api_key`` (absent
  when the report came without a known key), ``source`` and ``report`` (the report as JSON).
  The fan-out routes by the first two without parsing the third. An entry's id is its enqueue
  time in milliseconds, so the queue's age is the age of its oldest entry.
- ``FANOUT_GROUP`` (``fanout``) — the consumer group `sluice.fanout` reads the stream with:
  one script reads, copies to the export queues, then ``XACK``s and ``XDEL``s, so the
  stream's length *is* the backlog. Nothing trims the stream (no ``MAXLEN``) and nothing
  expires it: an entry leaves only once it was processed.
- ``<prefix>:counters`` — a hash of running totals: ``requests``, ``accepted``,
  ``sampled_out``, ``dropped:<reason>`` (``no_networks``; ``backlog`` for reports refused with
  503 while the stream was over its bound).

An enqueue is one Lua script: it reads the stream's length, refuses the request when the
backlog has reached `QueueOptions.max_backlog`, else appends every entry and counts — one
round trip, and the bound cannot be raced past by parallel requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import hiredis
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, RedisError
from redis.typing import EncodableT

from sluice.intake.errors import Backlogged, QueueDown
from sluice.intake.submission import Report
from sluice.text import redact_secrets

#: The consumer group of the fan-out (`sluice.fanout.names.FANOUT_GROUP` is the same).
FANOUT_GROUP = "fanout"

_ENQUEUE = """
local depth = redis.call('XLEN', KEYS[1])
local entries = tonumber(ARGV[2])
local pairs_at = 3 + entries * 3
if depth >= tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], 'requests', 1)
  if entries > 0 then redis.call('HINCRBY', KEYS[2], 'dropped:backlog', entries) end
  return -1
end
for i = 0, entries - 1 do
  local at = 3 + i * 3
  if ARGV[at] == '' then
    redis.call('XADD', KEYS[1], '*', 'source', ARGV[at + 1], 'report', ARGV[at + 2])
  else
    redis.call('XADD', KEYS[1], '*', 'api_key', ARGV[at], 'source', ARGV[at + 1],
      'report', ARGV[at + 2])
  end
end
redis.call('HINCRBY', KEYS[2], 'requests', 1)
if entries > 0 then redis.call('HINCRBY', KEYS[2], 'accepted', entries) end
for i = pairs_at, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
return depth + entries
"""


@dataclass(frozen=True)
class QueueOptions:
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: The prefix of every Redis key of this intake.
    prefix: str = "sluice:intake"
    #: Requests are answered 503 once the stream holds this many entries.
    max_backlog: int = 1_000_000
    #: Seconds a refused client is told to wait (``Retry-After``).
    retry_after: int = 30
    #: Seconds a Redis command may take before the request is answered 503.
    timeout: float = 2.0


@dataclass(frozen=True)
class QueueStatus:
    depth: int
    #: Seconds since the oldest entry was queued; None when the stream is empty.
    oldest_age: float | None
    counters: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        counters = dict(self.counters)
        dropped = {k.partition(":")[2]: v for k, v in counters.items() if k.startswith("dropped:")}
        return {
            "depth": self.depth,
            "oldest_age_seconds": self.oldest_age,
            "requests": counters.get("requests", 0),
            "accepted": counters.get("accepted", 0),
            "sampled_out": counters.get("sampled_out", 0),
            "dropped": dropped,
        }


class _Connection(aioredis.Connection):
    """redis-py's asyncio connection, packing commands with hiredis (in C) as its synchronous
    client does: an enqueue carries three arguments per report."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        packed: Any = args
        try:
            return [hiredis.pack_command(packed)]
        except TypeError:
            # hiredis takes no bytearray: as bytes, the rest as redis-py would refuse it.
            packed = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)
        try:
            return [hiredis.pack_command(packed)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def connect(options: QueueOptions) -> aioredis.Redis:
    """A client that fails fast: an unreachable Redis must become a quick 503, not a wait
    through retries."""
    extra: dict[str, Any] = {}
    if urlsplit(options.redis_url).scheme == "redis":  # TLS and sockets keep their own class
        extra["connection_class"] = _Connection
    client: aioredis.Redis = aioredis.Redis.from_url(
        options.redis_url,
        socket_timeout=options.timeout,
        socket_connect_timeout=options.timeout,
        retry=Retry(NoBackoff(), 0),
        **extra,
    )
    return client


class IntakeQueue:
    """Appends reports to the intake stream and keeps the counters."""

    def __init__(self, client: aioredis.Redis, options: QueueOptions) -> None:
        self.client = client
        self.options = options
        self.stream = f"{options.prefix}:intake"
        self.counters = f"{options.prefix}:counters"
        self._enqueue = client.register_script(_ENQUEUE)

    async def put(
        self, reports: Sequence[Report], api_key: str | None, dropped: Mapping[str, int]
    ) -> int:
        """Queue `reports` (and count `dropped`); the stream's depth after. Raises `Backlogged`
        when the backlog has reached its bound, `QueueDown` when Redis fails."""
        args: list[Any] = [self.options.max_backlog, len(reports)]
        key = api_key or ""
        for one in reports:
            args += [key, one.source, encoded(one.report)]
        for reason, count in dropped.items():
            args += [f"dropped:{reason}", count]
        try:
            depth = int(await self._enqueue(keys=[self.stream, self.counters], args=args))
        except RedisError as exc:
            raise self._down(exc) from exc
        if depth < 0:
            raise Backlogged(
                f"the intake queue holds {self.options.max_backlog} or more entries; "
                f"{len(reports)} reports refused",
                self.options.retry_after,
            )
        return depth

    async def count(self, **counts: int) -> None:
        """Add to the counters (``sampled_out=3``, ``dropped_no_networks=1`` is
        ``dropped:no_networks``). Best effort: a counter is not worth refusing data for."""
        wanted = {_counter(name): n for name, n in counts.items() if n}
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hincrby(self.counters, "requests", 1)
                for name, n in wanted.items():
                    pipe.hincrby(self.counters, name, n)
                await pipe.execute()
        except RedisError:
            pass

    async def status(self) -> QueueStatus:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xlen(self.stream)
                pipe.xrange(self.stream, "-", "+", count=1)
                pipe.hgetall(self.counters)
                depth, first, counters = await pipe.execute()
        except RedisError as exc:
            raise self._down(exc) from exc
        age = None
        if first:
            millis = int(first[0][0].split(b"-")[0])
            age = max(0.0, time.time() - millis / 1000)
        return QueueStatus(
            int(depth), age, {k.decode(): int(v) for k, v in sorted(counters.items())}
        )

    def _down(self, exc: RedisError) -> QueueDown:
        where = redact_secrets(self.options.redis_url)
        return QueueDown(
            f"the intake queue at {where} failed: {redact_secrets(str(exc))}",
            self.options.retry_after,
        )


def encoded(report: Mapping[str, Any]) -> bytes:
    """A report as compact JSON: orjson's, or the standard library's for what orjson cannot
    write (integers beyond 64 bits, lone surrogates). Both parse to the same values; the text
    may differ in how a number or a non-ASCII character is written."""
    try:
        return orjson.dumps(report)
    except TypeError:
        return json.dumps(report, separators=(",", ":")).encode()


def _counter(name: str) -> str:
    return f"dropped:{name[len('dropped_') :]}" if name.startswith("dropped_") else name
