"""The results of a dataset-listing API, checked one by one.

A listing answers ``{"success": true, "results": [...]}``; each result names one dataset file:
``id`` (its type), ``dataset_id``, ``url`` (a signed, expiring link), ``start_date``,
``end_date`` and ``last_updated``. A result missing a field, with a date that is not ISO, or
with a link that is not https to a non-root path is *invalid*: counted and reported, never
fetched, never fatal to the others (the seed's ``valid_dataset?``). The type and the dataset id
become parts of an object key, so they must be plain names as well.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from sluice.text import visible

FIELDS = ("id", "dataset_id", "url", "start_date", "end_date", "last_updated")
#: What a type or a dataset id may be: it names a folder and a file of Incoming.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: ISO 8601 extended: ``2022-05-22T20:49:50.123456``, an optional zone (``Z``, ``+00:00``).
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class Dataset:
    """A valid result: one dataset file to fetch."""

    kind: str
    dataset_id: str
    url: str
    start_date: date
    end_date: date
    #: In UTC, without a zone (the API's own convention).
    last_updated: datetime


@dataclass(frozen=True)
class Invalid:
    """A result that cannot be fetched, and why."""

    position: int
    dataset_id: str
    reason: str

    def __str__(self) -> str:
        name = f" ({self.dataset_id})" if self.dataset_id else ""
        return f"result {self.position}{name}: {self.reason}"


def check_results(
    results: list[Any], *, allow_http_loopback: bool = False
) -> tuple[list[Dataset], list[Invalid]]:
    """Split `results` into datasets to fetch and invalid results. Of two results with the
    same dataset id, the newer one is kept."""
    valid: dict[str, Dataset] = {}
    invalid: list[Invalid] = []
    for position, result in enumerate(results):
        found = check_result(result, allow_http_loopback=allow_http_loopback)
        if isinstance(found, str):
            raw = result.get("dataset_id") if isinstance(result, dict) else None
            shown = visible(raw[:80]) if isinstance(raw, str) else ""
            invalid.append(Invalid(position, shown, found))
            continue
        known = valid.get(found.dataset_id)
        if known is None or found.last_updated > known.last_updated:
            valid[found.dataset_id] = found
    return list(valid.values()), invalid


def check_result(result: Any, *, allow_http_loopback: bool = False) -> Dataset | str:
    """The dataset `result` describes, or why it is invalid."""
    if not isinstance(result, dict):
        return f"not an object but {type(result).__name__}"
    missing = [f for f in FIELDS if f not in result]
    if missing:
        return f"missing {', '.join(missing)}"
    wrong = [f for f in FIELDS if not isinstance(result[f], str)]
    if wrong:
        return f"{', '.join(wrong)} must be text"
    for name in ("id", "dataset_id"):
        if not _NAME.fullmatch(result[name]) or ".." in result[name]:
            return f"{name} '{visible(result[name][:80])}' is not a plain name"
    dates: list[date] = []
    for name in ("start_date", "end_date"):
        parsed = _date(result[name])
        if parsed is None:
            return f"{name} '{visible(result[name][:40])}' is not an ISO date (YYYY-MM-DD)"
        dates.append(parsed)
    stamp = parse_stamp(result["last_updated"])
    if stamp is None:
        return f"last_updated '{visible(result['last_updated'][:40])}' is not an ISO timestamp"
    problem = link_problem(result["url"], allow_http_loopback=allow_http_loopback)
    if problem:
        return problem
    return Dataset(result["id"], result["dataset_id"], result["url"], dates[0], dates[1], stamp)


def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_stamp(text: str) -> datetime | None:
    """An ISO-extended timestamp in UTC without a zone, or None."""
    if not _STAMP.fullmatch(text):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def link_problem(url: str, *, allow_http_loopback: bool) -> str | None:
    """Why `url` is not a link to fetch, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        return "url is not a URL"
    if not host:
        return f"url '{shown_url(url)}' names no host"
    if parts.path in ("", "/"):
        return f"url '{shown_url(url)}' has no path"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and is_loopback(host):
        return None
    return f"url '{shown_url(url)}' is not https"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    """`url` as messages show it: without its query (a signed link's token) or credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<not a URL>"
    return visible(f"{parts.scheme}://{host}{port}{parts.path}"[:200])
