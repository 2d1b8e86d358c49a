"""Daily request limits per API key and per path, counted in Redis.

One counter per (key, path, UTC day): ``<prefix>:apilimit:<key>:<path>:<YYYYMMDD>``, as the
seed names it, incremented by each request and kept 25 hours (the day, plus slack for clocks
and late readers). A request over the key's ``maxreq`` is refused. The limit *fails open*: when
Redis errors, the request goes on — a limit is not worth refusing data for, and the enqueue
that follows says 503 if Redis is really away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sluice.intake.throttle import Throttled

log = Throttled(logging.getLogger(__name__))

#: Seconds a day's counter is kept.
COUNTER_TTL = 25 * 3600


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DailyLimits:
    def __init__(
        self, client: aioredis.Redis, prefix: str, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock

    def counter(self, key: str, path: str) -> str:
        return f"{self.prefix}:apilimit:{key}:{path}:{self.clock():%Y%m%d}"

    async def exceeded(self, key: str, path: str, maxreq: int | None) -> bool:
        """Count one request of `key` on `path`; whether it is beyond `maxreq` (None or 0:
        unlimited, nothing counted)."""
        if not maxreq or maxreq <= 0:
            return False
        name = self.counter(key, path)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, COUNTER_TTL)
                count, _ = await pipe.execute()
        except RedisError as exc:
            # No key in the log: it is a secret. The path says which limit was skipped.
            log.warning("daily limit on %s not checked (Redis failed: %s)", path, exc)
            return False
        return int(count) > maxreq
