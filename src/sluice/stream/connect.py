"""The broker a stream lives on, by kind: ``redis`` (Redis Streams) or ``nats`` (JetStream)."""

from __future__ import annotations

from sluice.errors import ConfigError
from sluice.stream.broker import Broker
from sluice.stream.options import BatchOptions

KINDS = ("redis", "nats")
DEFAULT_URLS = {"redis": "redis://127.0.0.1:6379/0", "nats": "nats://127.0.0.1:4222"}
#: JetStream redelivers what is unacknowledged after its ack wait: longer than a batch may age.
ACK_WAIT_MARGIN = 300.0


def connect(kind: str, url: str, prefix: str, options: BatchOptions) -> Broker:
    if kind == "redis":
        from sluice.stream.redis import RedisBroker

        return RedisBroker(url, prefix)
    if kind == "nats":
        from sluice.stream.nats import NatsBroker

        return NatsBroker(
            url,
            prefix,
            max_records=options.max_records,
            ack_wait=options.max_age_seconds + ACK_WAIT_MARGIN,
        )
    raise ConfigError(f"unknown broker {kind!r} (known: {', '.join(KINDS)})")
