"""The JSON API: the same data as ``sluice status --json``, ``sluice loads`` and ``sluice feeds``,
each route a thin shell over one `Engine` call (run in a thread: the engine is synchronous).

Every error answer is ``{"error": "<one line>"}``: 400 for a parameter the route does not take
(its name, what it must be, what came), 404 for a load or feed the ledger does not have, 503
while the database is unreachable (see `sluice.service.app`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.service.openapi import MAX_ID, MAX_LIMIT, MAX_MINUTES, STATUSES


class BadParameter(ValueError):
    """A query or path parameter that is not what its route takes."""


class NotFound(LookupError):
    """A load or feed the ledger does not have."""


def routes(engine: Engine) -> list[Route]:
    async def status(request: Request) -> Response:
        errors = _int(request, "errors", 10)
        runs = _int(request, "runs", 5)
        report = await run_in_threadpool(engine.status, errors=errors, runs=runs)
        return JSONResponse(report.as_dict())

    async def loads(request: Request) -> Response:
        status = _choice(request, "status", STATUSES)
        feed = _feed(request)
        limit = _int(request, "limit", 100)
        found = await _ledger(engine.loads, feed=feed, status=status, limit=limit)
        return JSONResponse([load.as_dict() for load in found])

    async def load(request: Request) -> Response:
        load_id = _load_id(request.path_params["load_id"])
        found = await _ledger(engine.load, load_id)
        return JSONResponse(found.as_dict())

    async def runs(request: Request) -> Response:
        limit = _int(request, "limit", 20)
        report = await run_in_threadpool(engine.status, errors=0, runs=limit)
        return JSONResponse(report.as_dict()["runs"])

    async def feeds(request: Request) -> Response:
        found = await run_in_threadpool(engine.feeds_overview)
        return JSONResponse([feed.as_dict() for feed in found])

    async def throughput(request: Request) -> Response:
        minutes = _int(request, "minutes", 180, maximum=MAX_MINUTES)
        points = await run_in_threadpool(engine.throughput, minutes)
        return JSONResponse([point.as_dict() for point in points])

    return [
        Route("/api/status", status, methods=["GET"]),
        Route("/api/loads", loads, methods=["GET"]),
        Route("/api/loads/{load_id}", load, methods=["GET"]),
        Route("/api/runs", runs, methods=["GET"]),
        Route("/api/feeds", feeds, methods=["GET"]),
        Route("/api/throughput", throughput, methods=["GET"]),
    ]


def problem(status: int, message: str, **extra: Any) -> JSONResponse:
    """An error answer: always ``{"error": ...}``, with the HTTP status."""
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _ledger(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call` in a thread; the engine's "there is no load / feed" becomes a 404."""
    try:
        return await run_in_threadpool(call, *args, **kwargs)
    except ConfigError as exc:
        raise NotFound(str(exc)) from exc


def _param(request: Request, name: str) -> str | None:
    """The one value of query parameter `name`, or None when it is not given."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter(f"{name} is given {len(values)} times; give it once")
    if values[0] == "":
        raise BadParameter(f"{name} is empty; give a value or leave it out")
    return values[0]


def _int(request: Request, name: str, default: int, *, maximum: int = MAX_LIMIT) -> int:
    raw = _param(request, name)
    if raw is None:
        return default
    value = _integer(name, raw)
    if not 0 <= value <= maximum:
        raise BadParameter(f"{name} must be within 0..{maximum}, got {value}")
    return value


def _choice(request: Request, name: str, allowed: list[str]) -> str | None:
    raw = _param(request, name)
    if raw is not None and raw not in allowed:
        raise BadParameter(f"unknown {name} {_shown(raw)} (one of: {', '.join(allowed)})")
    return raw


def _feed(request: Request) -> str | None:
    raw = _param(request, "feed")
    # PostgreSQL text cannot hold a NUL, so no feed is called that (and the driver would
    # refuse to send it).
    if raw is not None and "\x00" in raw:
        raise NotFound(f"there is no feed {_shown(raw)}")
    return raw


def _load_id(raw: str) -> int:
    value = _integer("load_id", raw)
    if not 1 <= value <= MAX_ID:
        # Beyond what the ledger's ids can be: it cannot exist (and must not reach the SQL).
        raise NotFound(f"there is no load {value}")
    return value


def _integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer, got {_shown(raw)}") from None


def _shown(raw: str, limit: int = 60) -> str:
    """A parameter's value quoted for a message, cut short if it is long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")
