"""How a stream batcher cuts its stream into objects (`BatchOptions`), and where they go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice import tomlread
from sluice.errors import ConfigError

#: Where a stream's objects go, below the Incoming location: ``<KEY_PREFIX><name>/``.
KEY_PREFIX = "cubic/kafka/"


@dataclass(frozen=True)
class BatchOptions:
    #: An object is written once it holds this many messages ...
    max_records: int = 10_000
    #: ... or once its first message is this many seconds old, whichever comes first.
    max_age_seconds: float = 3600.0
    #: Flush and return once no message has arrived for this many seconds (None: run on).
    until_idle: float | None = None
    #: The consumer group and the consumer name on the broker. A restarted batcher must keep
    #: its consumer name: the messages it held but had not acknowledged are read back by it.
    group: str = "sluice"
    consumer: str = "batcher"
    #: The longest wait for a message, in seconds (the stop and age checks run between waits).
    block_seconds: float = 1.0
    #: Where objects go, below the Incoming prefix (``<name>/`` is added).
    key_prefix: str = KEY_PREFIX
    #: The dead-letter stream of stream NAME is NAME + this suffix.
    dead_suffix: str = ":dead"


#: The Redis of a stream when neither the declaration nor ``SLUICE_REDIS_URL`` names one.
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_NATS = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class StreamDeclaration:
    """A stream ``sluice run`` batches into Incoming (``[streams.NAME]``)."""

    name: str
    #: ``redis`` (Redis Streams) or ``nats`` (NATS JetStream).
    broker: str = "redis"
    redis_url: str = DEFAULT_REDIS
    nats_url: str = DEFAULT_NATS
    #: Put before the name to make the stream's Redis key.
    prefix: str = ""
    options: BatchOptions = BatchOptions()


def parse_streams(
    section: Mapping[str, Any], env: Mapping[str, str], where: str
) -> dict[str, StreamDeclaration]:
    """``[streams.NAME]`` tables: ``broker`` (``redis`` or ``nats``), ``redis_url`` (else
    ``SLUICE_REDIS_URL``), ``nats_url`` (else ``SLUICE_NATS_URL``), ``prefix``,
    ``max_records``, ``max_age_seconds``, ``consumer``."""
    found = {}
    known = {
        "broker",
        "redis_url",
        "nats_url",
        "prefix",
        "max_records",
        "max_age_seconds",
        "consumer",
    }
    for name, body in section.items():
        here = f"{where} [streams.{name}]"
        if not isinstance(body, Mapping):
            raise ConfigError(f"{here}: must be a table")
        tomlread.only_keys(body, known, here)
        text = {}
        for key, default in (
            ("broker", "redis"),
            ("redis_url", env.get("SLUICE_REDIS_URL") or DEFAULT_REDIS),
            ("nats_url", env.get("SLUICE_NATS_URL") or DEFAULT_NATS),
            ("prefix", ""),
            ("consumer", "batcher"),
        ):
            value = body.get(key, default)
            if not isinstance(value, str):
                raise ConfigError(f"{here}: {key} must be a string")
            text[key] = value
        records = body.get("max_records", 10_000)
        if isinstance(records, bool) or not isinstance(records, int) or records < 1:
            raise ConfigError(f"{here}: max_records must be a whole number >= 1, got {records!r}")
        age = body.get("max_age_seconds", 3600)
        if isinstance(age, bool) or not isinstance(age, int | float) or age <= 0:
            raise ConfigError(f"{here}: max_age_seconds must be a number > 0, got {age!r}")
        if text["broker"] not in ("redis", "nats"):
            raise ConfigError(f"{here}: broker must be redis or nats, got {text['broker']!r}")
        found[name] = StreamDeclaration(
            name=name,
            broker=text["broker"],
            redis_url=text["redis_url"],
            nats_url=text["nats_url"],
            prefix=text["prefix"],
            options=BatchOptions(
                max_records=records, max_age_seconds=float(age), consumer=text["consumer"]
            ),
        )
    return found
