"""The ASGI application of ``sluice serve``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sluice.api import Engine
from sluice.errors import SluiceError, TransientError
from sluice.service import api, auth, dashboard, metrics
from sluice.service.openapi import document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    """What the service needs beyond the engine."""

    #: A secret every request must carry (bearer header, ``?token=``, or the cookie it sets).
    token: str | None = None


@dataclass(frozen=True)
class Extension:
    """What a flow adds to the service: routes behind the token like the rest, public routes
    anyone may ask (a submission API, whose clients never hold the service's token), and the
    OpenAPI paths that describe them; `metrics`, if given, returns more of ``/metrics`` (in
    Prometheus's text format, its own metric names)."""

    routes: Sequence[BaseRoute] = ()
    public_routes: Sequence[Route] = ()
    paths: Mapping[str, Any] = field(default_factory=dict)
    metrics: Callable[[], bytes] | None = None


def create_app(
    engine: Engine,
    settings: ServiceSettings | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    extensions: Sequence[Extension] = (),
) -> Starlette:
    """The service's application over `engine`; later flows add `extra_routes` (behind the
    token, like the rest) and `extensions` (their own routes, public or not, and their OpenAPI
    paths)."""
    options = settings or ServiceSettings()
    described = document(token=bool(options.token))
    for extension in extensions:
        described["paths"] = {**described["paths"], **extension.paths}
    public = frozenset(route.path for extension in extensions for route in extension.public_routes)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        try:
            await run_in_threadpool(engine.ping)
        except TransientError as exc:
            return JSONResponse(
                {"ok": False, "database": "unreachable", "error": str(exc)}, status_code=503
            )
        return JSONResponse({"ok": True, "database": "reachable"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(described)

    async def scrape(request: Request) -> Response:
        figures = await run_in_threadpool(engine.metrics)
        text = metrics.render(figures)
        for extension in extensions:
            if extension.metrics is not None:
                try:
                    text += await run_in_threadpool(extension.metrics)
                except SluiceError as exc:  # the ledger's figures are still worth answering
                    log.warning("metrics of an extension left out: %s", exc)
        return Response(text, media_type=metrics.CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
        *api.routes(engine),
        *dashboard.routes(engine),
        *extra_routes,
        *(route for extension in extensions for route in extension.routes),
        *(route for extension in extensions for route in extension.public_routes),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(auth.Guard, token=options.token, open_paths=public)],
        exception_handlers={
            api.BadParameter: _bad_parameter,
            api.NotFound: _not_found,
            TransientError: _unavailable,
            HTTPException: _http_error,
        },
    )


async def _bad_parameter(request: Request, exc: Exception) -> Response:
    return api.problem(400, str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return api.problem(404, str(exc))


async def _unavailable(request: Request, exc: Exception) -> Response:
    # One line in the log per failed request would flood it during an outage: debug only;
    # /readyz and the 503s say it to whoever asks.
    log.debug("answered 503 to %s: %s", request.url.path, exc)
    return api.problem(503, f"the database is unreachable: {exc}")


async def _http_error(request: Request, exc: Exception) -> Response:
    """The router's own answers (no such path, a method the route does not take) in the
    same JSON shape as every other error."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no such path: {request.url.path}"
    elif exc.status_code == 405:
        # The router lists the methods from a set: in a stable order, they read the same twice.
        allowed = ", ".join(sorted(m.strip() for m in headers.get("Allow", "").split(",")))
        headers["Allow"] = allowed
        message = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
    else:
        message = exc.detail
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)
