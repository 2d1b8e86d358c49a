"""The stream batcher: a broker stream (Redis Streams; NATS JetStream in `sluice.stream.nats`,
imported only when asked for) cut into gzip JSON-lines objects of an Incoming location, each
message in exactly one object, acknowledged after the write."""

from sluice.stream.batcher import Batcher, BatchReport, json_line
from sluice.stream.broker import Broker, Message, id_part
from sluice.stream.options import KEY_PREFIX, BatchOptions
from sluice.stream.redis import RedisBroker

__all__ = [
    "KEY_PREFIX",
    "BatchOptions",
    "BatchReport",
    "Batcher",
    "Broker",
    "Message",
    "RedisBroker",
    "id_part",
    "json_line",
]
