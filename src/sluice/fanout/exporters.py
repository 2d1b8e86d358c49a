"""Exporters, by kind: what one batch of reports becomes at its destination.

`EXPORTERS` maps a kind (the seed's ``schema`` column) to a factory; a later kind (the
``internal`` one of the station tables) is added with `register`. An exporter raises
`TransientError` for what may pass (5xx, lost connections, a throttled store: the batch is
tried again after a pause) and `TerminalError` for what will not (4xx: the batch goes to the
dead letters at once).
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import httpx

from sluice.db import Database
from sluice.errors import ConfigError, TerminalError, TransientError
from sluice.fanout.configs import ExportConfig
from sluice.store import S3Options, Store, locate
from sluice.text import redact_secrets


@dataclass(frozen=True)
class Item:
    """One report of a batch: its intake entry id, key, source and the report as JSON."""

    iid: str
    api_key: str | None
    source: str
    report: bytes

    @property
    def millis(self) -> int:
        """When the report was accepted (the intake entry id is its enqueue time in ms)."""
        return int(self.iid.split("-")[0])


@dataclass(frozen=True)
class Batch:
    export: str
    #: The first entry id of the batch in its export stream: the same on every try.
    batch_id: str
    items: Sequence[Item]


class Exporter(Protocol):
    def send(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class LooksAhead(Protocol):
    """An exporter that is told the batch it will be sent next before the current one is
    sent, so that it can prepare that batch while it waits on its destination."""

    def ahead(self, batch: Batch) -> None: ...


@dataclass(frozen=True)
class ExportContext:
    """What exporters may need beyond their config."""

    s3: S3Options = field(default_factory=S3Options)
    #: Seconds a geosubmit POST may take (the seed's 60 s).
    http_timeout: float = 60.0
    #: The fan-out's database, for exporters that write to it (``internal``).
    database: Database | None = None
    #: Whether the ``internal`` exporter keeps the datamap (the seed's map content switch).
    map_content: bool = True


Factory = Callable[[ExportConfig, ExportContext], Exporter]
#: Checks a config's URL for its kind when it is added (raises ConfigError).
Checker = Callable[[ExportConfig], None]

EXPORTERS: dict[str, Factory] = {}
CHECKERS: dict[str, Checker] = {}
#: Kinds whose module registers them when it is imported, on first use (so that the fan-out
#: does not load the station tables' code unless an export needs it).
PLUGINS: dict[str, str] = {"internal": "sluice.stations.exporter"}


def register(kind: str, factory: Factory, checker: Checker | None = None) -> None:
    EXPORTERS[kind] = factory
    if checker is not None:
        CHECKERS[kind] = checker


def kinds() -> list[str]:
    """Every kind an export may have: those registered and the plug-ins present."""
    present = {k for k, module in PLUGINS.items() if importlib.util.find_spec(module) is not None}
    return sorted(set(EXPORTERS) | present)


def _load(kind: str) -> None:
    if kind not in EXPORTERS and kind in PLUGINS and kind in kinds():
        importlib.import_module(PLUGINS[kind])


def make(config: ExportConfig, context: ExportContext) -> Exporter:
    _load(config.kind)
    factory = EXPORTERS.get(config.kind)
    if factory is None:
        raise ConfigError(
            f"export {config.name}: no exporter of kind {config.kind!r} "
            f"(known: {', '.join(kinds())})"
        )
    return factory(config, context)


def check_url(config: ExportConfig) -> None:
    _load(config.kind)
    checker = CHECKERS.get(config.kind)
    if checker is not None:
        checker(config)


# -- dummy ----------------------------------------------------------------------------------------


class Dummy:
    """Sends nothing: the delivery counters are the whole effect (the seed's dummy)."""

    def send(self, batch: Batch) -> None:
        return None

    def close(self) -> None:
        return None


# -- geosubmit ------------------------------------------------------------------------------------

USER_AGENT = "ichnaea"


class Geosubmit:
    """A gzip POST of ``{"items": [report, ...]}`` (without the keys) to the config's URL.

    The request carries ``Idempotency-Key: <export>:<batch id>``, the same on every try of a
    batch, so that a receiver can drop the copy of a batch re-sent after a crash."""

    def __init__(self, config: ExportConfig, context: ExportContext) -> None:
        assert config.url is not None
        self.url = config.url
        self.client = httpx.Client(timeout=context.http_timeout)

    def send(self, batch: Batch) -> None:
        body = b'{"items":[' + b",".join(item.report for item in batch.items) + b"]}"
        headers = {
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": f"{batch.export}:{batch.batch_id}",
        }
        where = shown_url(self.url)
        try:
            answer = self.client.post(self.url, content=gzip.compress(body, 5), headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"POST {where}: {type(exc).__name__}: {exc}") from exc
        if answer.is_success:
            return
        text = answer.text[:200].strip()
        message = f"POST {where} answered {answer.status_code}" + (f": {text}" if text else "")
        # 408 and 429 say "later"; other 4xx say the request itself is wrong.
        if answer.status_code >= 500 or answer.status_code in (408, 429):
            raise TransientError(message)
        raise TerminalError(message)

    def close(self) -> None:
        self.client.close()


_SECRET_QUERY = re.compile(r"([?&](?:key|api_key|apikey|token|secret|password)=)[^&#]*", re.I)


def shown_url(url: str) -> str:
    """`url` as a message may quote it: passwords and secret query values (the seed's
    geosubmit URLs carry ``?key=<API key>``) replaced by ``***``."""
    return _SECRET_QUERY.sub(r"\1***", redact_secrets(url))


def _check_http(config: ExportConfig) -> None:
    if not config.url or not config.url.startswith(("http://", "https://")):
        raise ConfigError(f"export {config.name}: a geosubmit export needs an http(s):// --url")


# -- bucket ---------------------------------------------------------------------------------------

#: The placeholders of a bucket URL (the seed's, not zero-padded).
PLACEHOLDERS = ("source", "api_key", "year", "month", "day")


class Bucket:
    """Gzip JSON lines (one report per line) at ``<url formatted>/<batch id>.json.gz``.

    The URL may hold ``{source}``, ``{api_key}`` (``no_key`` for reports without one),
    ``{year}``, ``{month}`` and ``{day}`` (the UTC day the report was accepted): a batch is
    written as one object per distinct formatted folder. The object's name is the batch's
    id, so a batch tried again after a crash overwrites its own objects instead of adding
    copies."""

    def __init__(self, config: ExportConfig, context: ExportContext) -> None:
        assert config.url is not None
        base, template = split_template(config.url)
        self.store: Store
        self.store, prefix = locate(base, context.s3, create=True)
        self.template = "/".join(p for p in (prefix.strip("/"), template.strip("/")) if p)

    def send(self, batch: Batch) -> None:
        groups: dict[str, list[bytes]] = defaultdict(list)
        for item in batch.items:
            groups[self.folder(item)].append(item.report)
        name = batch.batch_id.replace("-", "_") + ".json.gz"
        for folder, reports in groups.items():
            key = f"{folder}/{name}" if folder else name
            body = gzip.compress(b"".join(r + b"\n" for r in reports), 7)
            # The store classifies its own failures (throttled, unreachable: transient).
            self.store.put(key, body)

    def folder(self, item: Item) -> str:
        day = datetime.fromtimestamp(item.millis / 1000, UTC)
        return self.template.format(
            source=item.source,
            api_key=item.api_key or "no_key",
            year=day.year,
            month=day.month,
            day=day.day,
        )

    def close(self) -> None:
        return None


def split_template(url: str) -> tuple[str, str]:
    """``s3://b/p/{source}/x`` → (``s3://b/p``, ``{source}/x``): the part without
    placeholders is the store location."""
    cut = url.find("{")
    if cut < 0:
        return url.rstrip("/"), ""
    base = url[:cut].rsplit("/", 1)[0]
    return base, url[len(base) :].lstrip("/")


def _check_bucket(config: ExportConfig) -> None:
    if not config.url:
        raise ConfigError(
            f"export {config.name}: a bucket export needs a --url (s3:// or a folder)"
        )
    _, template = split_template(config.url)
    try:
        template.format(**{p: "x" for p in PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"export {config.name}: bad placeholder in --url ({exc}); "
            f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        ) from exc


register("dummy", lambda config, context: Dummy())
register("geosubmit", Geosubmit, _check_http)
register("bucket", Bucket, _check_bucket)


def parse_item(fields: dict[bytes, bytes]) -> Item:
    key = fields.get(b"api_key")
    return Item(
        iid=fields.get(b"iid", b"0-0").decode(),
        api_key=key.decode() if key is not None else None,
        source=fields.get(b"source", b"").decode(),
        report=fields.get(b"report", b"{}"),
    )
