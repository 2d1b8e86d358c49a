"""HTTP for the API fetcher: a JSON query and a streamed copy of a link into a store, each
failure classified where it enters, and retries with backoff.

A link is a signed URL whose query is its token: messages show links without their query
(`shown_url`), and the ``httpx`` logger, which would log every request URL, is kept at WARNING.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from sluice.errors import TerminalError, TransientError
from sluice.fetch.results import shown_url
from sluice.store import Store
from sluice.text import visible

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

T = TypeVar("T")
#: The statuses of a link that is no longer valid (an expired signature: 403 on Azure blobs).
EXPIRED = frozenset({401, 403, 404, 410})
#: The longest wait between two attempts.
MAX_BACKOFF = 60.0


class LinkExpired(TransientError):
    """A dataset's link no longer answers: the API must be asked for a fresh one."""


@dataclass(frozen=True)
class HttpOptions:
    attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0
    #: Bytes per piece of a streamed download.
    chunk_bytes: int = 1 << 20


def client(options: HttpOptions) -> httpx.Client:
    """A client that follows redirects (blob stores redirect) and never trusts the
    environment's proxies or netrc for a link (it would send them the link's token)."""
    return httpx.Client(
        timeout=httpx.Timeout(options.timeout_seconds),
        follow_redirects=True,
        trust_env=False,
    )


def retrying(
    what: str,
    attempt: Callable[[], T],
    options: HttpOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt()`, again after a transient failure, at most `options.attempts` times."""
    for number in range(1, options.attempts + 1):
        try:
            return attempt()
        except TransientError as exc:
            if number == options.attempts:
                raise
            delay = backoff(options, number)
            log.warning(
                "%s failed (attempt %d of %d), again in %.1f s: %s",
                what,
                number,
                options.attempts,
                delay,
                exc,
            )
            sleep(delay)
    raise AssertionError("unreachable")


def backoff(options: HttpOptions, attempt: int) -> float:
    return float(min(MAX_BACKOFF, options.backoff_seconds * 2 ** (attempt - 1)))


def get_json(
    http: httpx.Client, url: str, *, params: Mapping[str, str], headers: Mapping[str, str]
) -> Any:
    """The JSON body of a GET; a 5xx, a 429 or a connection failure is transient, any other
    non-200 answer terminal. Messages name the URL without its query."""
    where = shown_url(url)
    try:
        response = http.get(url, params=params, headers=headers)
    except httpx.TransportError as exc:
        raise TransientError(f"GET {where}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise _status_error(f"GET {where}", response.status_code, response.text)
    try:
        return response.json()
    except ValueError as exc:
        raise TerminalError(f"GET {where}: the answer is not JSON: {exc}") from exc


def copy_link(http: httpx.Client, link: str, store: Store, key: str, options: HttpOptions) -> int:
    """Stream the body of `link` into `key` of `store` (bounded memory: one piece at a time);
    return its size. A link that no longer answers raises `LinkExpired`."""
    where = shown_url(link)
    failed: list[BaseException] = []
    size = [0]

    def pieces(response: httpx.Response) -> Iterator[bytes]:
        try:
            for piece in response.iter_bytes(options.chunk_bytes):
                size[0] += len(piece)
                yield piece
        except httpx.HTTPError as exc:
            failed.append(exc)
            raise

    try:
        with http.stream("GET", link) as response:
            if response.status_code in EXPIRED:
                raise LinkExpired(f"GET {where}: {response.status_code}: the link has expired")
            if response.status_code != 200:
                raise _status_error(
                    f"GET {where}", response.status_code, response.read().decode("utf-8", "replace")
                )
            try:
                store.put(key, pieces(response))
            except Exception as exc:
                if failed:
                    raise TransientError(
                        f"GET {where}: the download broke after {size[0]:,} bytes: "
                        f"{type(failed[0]).__name__}: {failed[0]}"
                    ) from exc
                if isinstance(exc, TerminalError | TransientError):
                    raise
                raise TransientError(f"upload to {store.uri(key)}: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"GET {where}: {type(exc).__name__}: {exc}") from exc
    return size[0]


def _status_error(what: str, status: int, body: str) -> TerminalError | TransientError:
    excerpt = visible(" ".join(body.split())[:200])
    message = f"{what}: HTTP {status}: {excerpt}" if excerpt else f"{what}: HTTP {status}"
    if status >= 500 or status == 429:
        return TransientError(message)
    return TerminalError(message)
