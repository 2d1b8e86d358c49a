"""API keys: the table's rows (`KeyStore`, the one class here that runs SQL), which strings
count as keys, and the per-process cache the submit routes look keys up through.

A key is a secret: no message or log line of this module quotes one.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from sluice.db.queries import load as load_queries
from sluice.db.schema_store import SchemaStore
from sluice.errors import ConfigError

Q = load_queries("sluice.intake", "keys.sql")

#: What a key may be: 4-40 characters of [-0-9a-z], any case. Anything else counts as no key.
VALID_KEY = re.compile(r"[-0-9a-z]{4,40}", re.IGNORECASE)


def is_valid(given: str | None) -> bool:
    return given is not None and VALID_KEY.fullmatch(given) is not None


@dataclass(frozen=True)
class ApiKey:
    """A row of ``api_key``. The defaults are those of a request without a (known) key:
    unlimited, every submission kept."""

    valid_key: str
    #: Requests per day and path; None or 0: unlimited.
    maxreq: int | None = None
    allow_fallback: bool = False
    allow_locate: bool = True
    allow_region: bool = True
    #: Percent of locate-derived reports kept.
    store_sample_locate: int | None = 100
    #: Percent of submit requests kept; None or 0 keeps none.
    store_sample_submit: int | None = 100

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def keeps(rate: int | None, draw: float) -> bool:
    """Whether a request is kept at `rate` percent, for a uniform `draw` in [0, 1)."""
    # The seed's test (rate/100 >= draw), with 0 and NULL keeping nothing even when draw is 0.
    return rate is not None and rate > 0 and rate / 100 >= draw


class KeyStore(SchemaStore):
    """The ``api_key`` table of `schema`, over the database's pool."""

    queries = Q
    what = "api key"

    def get(self, valid_key: str) -> ApiKey | None:
        rows = self._run("get_key", {"valid_key": valid_key})
        return ApiKey(**rows[0]) if rows else None

    def list(self) -> list[ApiKey]:
        return [ApiKey(**row) for row in self._run("list_keys", {})]

    def add(self, key: ApiKey) -> None:
        _check(key.valid_key)
        if not self._run("add_key", key.as_dict()):
            raise ConfigError(f"{_masked(key.valid_key)} exists already (keys update changes it)")

    def update(self, valid_key: str, **changes: int | None) -> None:
        """Set the given columns (``maxreq``, ``store_sample_submit``, ``store_sample_locate``)."""
        params: dict[str, Any] = {"valid_key": valid_key}
        for column in ("maxreq", "store_sample_submit", "store_sample_locate"):
            params[f"set_{column}"] = column in changes
            params[column] = changes.get(column)
        unknown = set(changes) - {"maxreq", "store_sample_submit", "store_sample_locate"}
        if unknown:
            raise ConfigError(f"cannot update {', '.join(sorted(unknown))} of a key")
        if not self._run("update_key", params):
            raise ConfigError(f"there is no {_masked(valid_key)}")

    def remove(self, valid_key: str) -> None:
        if not self._run("remove_key", {"valid_key": valid_key}):
            raise ConfigError(f"there is no {_masked(valid_key)}")


def _check(valid_key: str) -> None:
    if not is_valid(valid_key):
        raise ConfigError(
            "an API key is 4-40 characters of a-z, 0-9 and '-' "
            f"(the one given has {len(valid_key)} characters)"
        )


def _masked(valid_key: str) -> str:
    """How a message names a key without giving it away: its length only."""
    return f"API key of {len(valid_key)} characters"


def masked(valid_key: str) -> str:
    """A key as a listing shows it: the first four characters, the rest hidden."""
    return valid_key[:4] + "…" if len(valid_key) > 4 else "…"


class KeyCache:
    """Keys looked up recently, known and unknown, in this process: `size` entries, each kept
    `ttl` ± `jitter` seconds (the jitter spreads the look-ups of many processes that started
    together). Safe across threads."""

    def __init__(
        self,
        size: int = 500,
        ttl: float = 300.0,
        jitter: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.jitter = jitter
        self.clock = clock
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def peek(self, valid_key: str) -> tuple[bool, ApiKey | None]:
        """(True, what was found) when the cache knows `valid_key`, else (False, None)."""
        with self._lock:
            entry = self._entries.get(valid_key)
            if entry is None:
                return False, None
            if entry[0] <= self.clock():
                del self._entries[valid_key]
                return False, None
            return True, entry[1]

    def put(self, valid_key: str, found: ApiKey | None) -> None:
        until = self.clock() + self.ttl + random.uniform(-self.jitter, self.jitter)
        with self._lock:
            self._entries.pop(valid_key, None)
            if len(self._entries) >= self.size:
                now = self.clock()
                for name in [k for k, (t, _) in self._entries.items() if t <= now]:
                    del self._entries[name]
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]  # the oldest put
            self._entries[valid_key] = (until, found)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
