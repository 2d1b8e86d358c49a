"""The JSON API: the same data as ``sluice status --json``, ``sluice loads`` and ``sluice feeds``,
each route a thin shell over one `Engine` call (run in a thread: the engine is synchronous)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.ledger.states import Status

#: The most loads or runs one request returns.
MAX_LIMIT = 1000


def routes(engine: Engine) -> list[Route]:
    async def status(request: Request) -> Response:
        errors = _int(request, "errors", 10)
        runs = _int(request, "runs", 5)
        report = await run_in_threadpool(engine.status, errors=errors, runs=runs)
        return JSONResponse(report.as_dict())

    async def loads(request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in set(Status):
            return problem(400, f"unknown status {status!r} (one of: {', '.join(Status)})")
        feed = request.query_params.get("feed") or None
        limit = _int(request, "limit", 100)
        try:
            found = await run_in_threadpool(engine.loads, feed=feed, status=status, limit=limit)
        except ConfigError as exc:
            return problem(404, str(exc))
        return JSONResponse([load.as_dict() for load in found])

    async def load(request: Request) -> Response:
        try:
            load_id = int(request.path_params["load_id"])
            found = await run_in_threadpool(engine.load, load_id)
        except (ValueError, ConfigError) as exc:
            return problem(404, str(exc) if isinstance(exc, ConfigError) else "no such load")
        return JSONResponse(found.as_dict())

    async def runs(request: Request) -> Response:
        limit = _int(request, "limit", 20)
        report = await run_in_threadpool(engine.status, errors=0, runs=limit)
        return JSONResponse(report.as_dict()["runs"])

    async def feeds(request: Request) -> Response:
        found = await run_in_threadpool(engine.feeds_overview)
        return JSONResponse([feed.as_dict() for feed in found])

    async def throughput(request: Request) -> Response:
        minutes = _int(request, "minutes", 180)
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


class BadParameter(ValueError):
    """A query parameter that is not what its route takes."""


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer, got {raw!r}") from None
    if not 0 <= value <= MAX_LIMIT:
        raise BadParameter(f"{name} must be within 0..{MAX_LIMIT}, got {value}")
    return value
