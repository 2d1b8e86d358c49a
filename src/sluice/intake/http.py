"""Submit routes over the intake: what a recipe declares (`Endpoint`), what one request goes
through (`Intake.submit`), and the thin HTTP shell (`routes`).

One request: the ``key`` query parameter (a malformed, unknown or unreadable key counts as no
key) → the key's daily limit on this path (403) → the body, read and parsed within bounds
(400, 413) → the endpoint's parser (lenient validation; 400 for wrong types) → the key's
sample rate (a request sampled out is still answered with success, and counted) → the intake
queue (503 with ``Retry-After`` when Redis fails or the backlog is over its bound).

Answers: the endpoint's success (200 ``{}`` or 204), else a Google-style error body
``{"error": {"errors": [{"domain", "reason", "message"}], "code", "message"[, "details"]}}``.
GET and HEAD are answered 400 (there is nothing to submit), OPTIONS with the CORS headers,
other methods 405. Every answer carries ``Access-Control-Allow-Origin: *`` and
``Access-Control-Max-Age: 2592000``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sluice.errors import SluiceError
from sluice.intake.body import BodyLimits, document, read_body
from sluice.intake.errors import LimitExceeded, ParseError, Refused, Unavailable
from sluice.intake.keys import ApiKey, KeyCache, is_valid, keeps
from sluice.intake.lenient import Imprecise, Node, watching_floats
from sluice.intake.limits import DailyLimits
from sluice.intake.queue import IntakeQueue
from sluice.intake.submission import Parser, Submission
from sluice.intake.throttle import Throttled

log = logging.getLogger(__name__)
_outage = Throttled(log)

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Max-Age": "2592000"}
#: Bodies up to this size are parsed on the event loop; larger ones in a thread.
INLINE_BYTES = 64 << 10
#: The methods a submit route answers other than 405.
METHODS = ("GET", "HEAD", "OPTIONS", "POST")


@dataclass(frozen=True)
class Endpoint:
    """A submit route, as a recipe declares it."""

    path: str
    #: The name its daily limits are counted under (``v2.geosubmit``).
    name: str
    parser: Parser
    #: The schema of one report, for the OpenAPI document.
    report: Node
    #: 200 with ``{}``, or 204 with no body.
    success: int = 200
    summary: str = ""
    deprecated: bool = False


@dataclass(frozen=True)
class Outcome:
    queued: int
    sampled_out: int
    dropped: Mapping[str, int]


class Intake:
    """What the submit routes share: the queue, the daily limits, the keys and the dice."""

    def __init__(
        self,
        queue: IntakeQueue,
        limits: DailyLimits,
        lookup: Callable[[str], ApiKey | None],
        *,
        cache: KeyCache | None = None,
        body: BodyLimits | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.queue = queue
        self.limits = limits
        self.lookup = lookup
        self.cache = cache or KeyCache()
        self.body = body or BodyLimits()
        self.draw = draw

    async def key(self, given: str | None) -> ApiKey | None:
        """The known key `given` names, or None (none given, malformed, unknown, or the table
        could not be read: the data is then queued without a key, as the seed does)."""
        if given is None or not is_valid(given):
            return None
        known, cached = self.cache.peek(given)
        if known:
            return cached
        try:
            found = await run_in_threadpool(self.lookup, given)
        except SluiceError as exc:
            _outage.warning("API key lookup failed; requests are taken as without a key: %s", exc)
            return None
        self.cache.put(given, found)
        return found

    async def submit(
        self,
        endpoint: Endpoint,
        given_key: str | None,
        headers: Mapping[str, str],
        chunks: AsyncIterator[bytes],
    ) -> Outcome:
        key = None if given_key is None else await self.key(given_key)
        if key is not None and await self.limits.exceeded(key.valid_key, endpoint.name, key.maxreq):
            raise LimitExceeded(f"the daily limit of the key on {endpoint.path} is used up")
        raw = await read_body(chunks, headers, self.body)
        if len(raw) > INLINE_BYTES:
            # Thousands of reports take a while to check: in a thread, the event loop keeps
            # answering the other requests in the meantime.
            submission = await run_in_threadpool(self._parse, endpoint, raw, headers)
        else:
            submission = self._parse(endpoint, raw, headers)
        rate = key.store_sample_submit if key is not None else 100
        if not keeps(rate, self.draw()):
            n = len(submission.reports)
            await self.queue.count(sampled_out=n, **_dropped(submission.dropped))
            return Outcome(0, n, submission.dropped)
        if not submission.reports:
            await self.queue.count(**_dropped(submission.dropped))
            return Outcome(0, 0, submission.dropped)
        api_key = key.valid_key if key is not None else None
        await self.queue.put(submission.reports, api_key, submission.dropped)
        return Outcome(len(submission.reports), 0, submission.dropped)

    def _parse(self, endpoint: Endpoint, raw: bytes, headers: Mapping[str, str]) -> Submission:
        parsed = document(raw, headers, self.body)
        try:
            with watching_floats():
                return endpoint.parser(parsed)
        except Imprecise:
            # A huge integer the fast parser may have rounded: the exact parser reads it whole.
            return endpoint.parser(document(raw, headers, self.body, exact=True))


def _dropped(dropped: Mapping[str, int]) -> dict[str, int]:
    return {f"dropped_{reason}": n for reason, n in dropped.items()}


def routes(endpoints: Sequence[Endpoint], intake: Intake) -> list[Route]:
    """One route per endpoint, taking every method (so that the answer to a wrong one is this
    module's 405, in the same shape as every other error)."""
    return [Route(e.path, _Submit(e, intake), name=e.name) for e in endpoints]


class _Submit:
    """The ASGI app of one submit route. (An app rather than a function: Starlette gives a
    function route only the methods it lists, and answers the others itself.)

    Raw ASGI rather than Starlette's `Request` and `Response`: the submit API answers
    thousands of requests a second, and what is the same for all of them (the success
    answers, their headers) is worked out once."""

    def __init__(self, endpoint: Endpoint, intake: Intake) -> None:
        self.endpoint = endpoint
        self.intake = intake
        if endpoint.success == 204:
            self._success = _prepared(Response(status_code=204, headers=CORS))
        else:
            self._success = _prepared(
                Response(b"{}", status_code=200, media_type="application/json", headers=CORS)
            )
        self._options = _prepared(Response(status_code=200, headers=CORS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        answer: _Prepared | Response
        if method == "POST":
            answer = await self.post(scope, receive)
        elif method == "OPTIONS":
            answer = self._options
        else:
            answer = self.refuse(method)
        if isinstance(answer, Response):
            await answer(scope, receive, send)
        else:
            await _send(send, answer)

    async def post(self, scope: Scope, receive: Receive) -> _Prepared | Response:
        """The answer to a POST: the prepared success, or an error response."""
        endpoint = self.endpoint
        try:
            await self.intake.submit(endpoint, _key(scope), _headers(scope), _chunks(receive))
        except Refused as exc:
            return refusal(exc)
        except ClientDisconnect:
            # Gone before its body came whole: nothing was queued, nobody reads the answer.
            return Response(status_code=400, headers=CORS)
        except Unavailable as exc:
            log.debug("answered 503 on %s: %s", endpoint.path, exc)
            return unavailable(exc)
        return self._success

    def refuse(self, method: str) -> Response:
        if method not in METHODS:
            return error_response(
                405,
                "methodNotAllowed",
                f"{method} is not allowed",
                headers={"Allow": ", ".join(METHODS)},
            )
        return refusal(ParseError(f"{method} has nothing to submit: POST a JSON body"))


#: An answer worked out once: its status, raw headers and body.
_Prepared = tuple[int, list[tuple[bytes, bytes]], bytes]


def _prepared(response: Response) -> _Prepared:
    return response.status_code, response.raw_headers, bytes(response.body)


async def _send(send: Send, prepared: _Prepared) -> None:
    status, headers, body = prepared
    # A copy of the headers: a middleware may add to the list of the message it passes on.
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def _key(scope: Scope) -> str | None:
    """The ``key`` query parameter, as Starlette reads it (the last one given)."""
    query = scope.get("query_string")
    if not query:
        return None
    return QueryParams(query).get("key")


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, the first of each name (as Starlette's
    `Headers.get` gives it)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in found:
            found[key] = value.decode("latin-1")
    return found


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's pieces as they come; `ClientDisconnect` when the client goes first."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def error_body(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    details: Mapping[str, Any] | None = None,
    why: str | None = None,
) -> dict[str, Any]:
    """The Google-style error document; `why`, when given, is the message of the one entry
    of ``errors`` (what exactly was wrong), `message` the seed's fixed text."""
    error: dict[str, Any] = {
        "errors": [{"domain": domain, "reason": reason, "message": why or message}],
        "code": status,
        "message": message,
    }
    if details:
        error["details"] = dict(details)
    return {"error": error}


def error_response(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    why: str | None = None,
) -> Response:
    body = error_body(status, reason, message, domain=domain, details=details, why=why)
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
        headers={**CORS, **(headers or {})},
    )


def refusal(exc: Refused) -> Response:
    """The answer to a refused request: what was wrong with it is the client's to know."""
    return error_response(
        exc.status, exc.reason, exc.public, domain=exc.domain, details=exc.details, why=exc.message
    )


def unavailable(exc: Unavailable) -> Response:
    # The fixed text only: why the queue is away (its address, the driver's words) is the
    # operator's business, in the log and in `status`.
    return error_response(
        exc.status, exc.reason, exc.public, headers={"Retry-After": str(exc.retry_after)}
    )
