"""The stream verbs: ``sluice stream consume NAME`` (a broker stream into Incoming objects) and
``sluice stream produce NAME --from FILE`` (JSON lines onto a stream, for tests and demos).

The broker is Redis Streams at ``--redis-url`` (environment ``SLUICE_REDIS_URL``, default
``redis://127.0.0.1:6379/0``); objects go to the ``[cubic]`` ``incoming`` location as
``cubic/kafka/<name>/<first-id>_<last-id>.jsonl.gz``.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from sluice import render
from sluice.commands.common import JsonOpt, out, print_json, say, settings, usage_error
from sluice.errors import ConfigError

stream = typer.Typer(
    help="Broker streams: batched into gzip JSON-lines objects of Incoming.",
    no_args_is_help=True,
)

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_NATS = "nats://127.0.0.1:4222"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

NameArg = Annotated[str, typer.Argument(help="The stream.", metavar="NAME", show_default=False)]
RedisOpt = Annotated[
    str,
    typer.Option(
        "--redis-url", envvar="SLUICE_REDIS_URL", metavar="URL", help="The Redis of the stream."
    ),
]
NatsOpt = Annotated[
    str,
    typer.Option(
        "--nats-url", envvar="SLUICE_NATS_URL", metavar="URL", help="The NATS of the stream."
    ),
]
BrokerOpt = Annotated[
    str,
    typer.Option(
        "--broker",
        metavar="KIND",
        help="redis (Redis Streams) or nats (NATS JetStream).",
    ),
]
PrefixOpt = Annotated[
    str,
    typer.Option(
        "--prefix",
        envvar="SLUICE_STREAM_PREFIX",
        metavar="TEXT",
        help="Put before the stream's name to make its Redis key.",
    ),
]


def duration(text: str, what: str) -> float:
    """Seconds from ``90``, ``1.5s``, ``10m``, ``1h``, ``500ms``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise usage_error(f"{what} must be a duration like 30s, 10m or 1h, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@stream.command("consume")
def consume(
    name: NameArg,
    max_records: Annotated[
        int, typer.Option("--max-records", min=1, metavar="N", help="Messages per object.")
    ] = 10_000,
    max_age: Annotated[
        str,
        typer.Option(
            "--max-age",
            metavar="DURATION",
            help="An object is written once its first message is this old.",
        ),
    ] = "1h",
    until_idle: Annotated[
        str | None,
        typer.Option(
            "--until-idle",
            metavar="SECONDS",
            help="Write what is held and exit once no message arrived for this long.",
            show_default=False,
        ),
    ] = None,
    consumer: Annotated[
        str,
        typer.Option(
            "--consumer",
            metavar="NAME",
            help="The consumer name (keep it across restarts: its pending messages are its own).",
        ),
    ] = "batcher",
    broker_kind: BrokerOpt = "redis",
    redis_url: RedisOpt = DEFAULT_REDIS,
    nats_url: NatsOpt = DEFAULT_NATS,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Batch the stream NAME into Incoming objects, acknowledging after each write."""
    from sluice.store import locate
    from sluice.stream import Batcher, BatchOptions
    from sluice.stream.connect import connect

    options = BatchOptions(
        max_records=max_records,
        max_age_seconds=duration(max_age, "--max-age"),
        until_idle=None if until_idle is None else duration(until_idle, "--until-idle"),
        consumer=consumer,
        block_seconds=1.0,
    )
    resolved = settings()
    s3 = replace(resolved.s3, endpoint_url=resolved.cubic.endpoint_url or resolved.s3.endpoint_url)
    store, key_prefix = locate(resolved.cubic.incoming, s3, create=True)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
    url = nats_url if broker_kind == "nats" else redis_url
    broker = connect(broker_kind, url, prefix, options)
    try:
        report = Batcher(broker, store, key_prefix, name, options).run(stop)
    finally:
        broker.close()
    if as_json:
        print_json(report.as_dict())
        return
    render.summary(
        out,
        f"stream {name}",
        {
            "messages": report.messages,
            "objects": len(report.objects),
            "dead-lettered": report.dead_lettered,
            "recovered": report.recovered,
            "seconds": f"{report.seconds:.1f}",
        },
    )


@stream.command("produce")
def produce(
    name: NameArg,
    source: Annotated[
        str,
        typer.Option("--from", metavar="FILE", help="JSON lines to publish ('-': stdin)."),
    ],
    broker_kind: BrokerOpt = "redis",
    redis_url: RedisOpt = DEFAULT_REDIS,
    nats_url: NatsOpt = DEFAULT_NATS,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Publish each non-empty line of FILE as one message of the stream NAME."""
    from sluice.stream import BatchOptions
    from sluice.stream.connect import connect

    url = nats_url if broker_kind == "nats" else redis_url
    broker = connect(broker_kind, url, prefix, BatchOptions())
    try:
        count = broker.publish(name, _lines(source))
    finally:
        broker.close()
    if as_json:
        print_json({"stream": name, "published": count})
    else:
        say(f"published {count} message(s) to {name}")


def _lines(source: str) -> Iterator[bytes]:
    if source == "-":
        yield from (line.rstrip(b"\r\n") for line in sys.stdin.buffer if line.strip())
        return
    try:
        with Path(source).open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield line.rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror or exc}") from exc
