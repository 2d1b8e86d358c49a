"""The ASGI application of ``sluice serve``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sluice.api import Engine
from sluice.errors import TransientError
from sluice.service import api, auth, dashboard, metrics
from sluice.service.openapi import DOCUMENT


@dataclass(frozen=True)
class ServiceSettings:
    """What the service needs beyond the engine."""

    #: A secret every request must carry (bearer header, ``?token=``, or the cookie it sets).
    token: str | None = None


def create_app(
    engine: Engine,
    settings: ServiceSettings | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The service's application over `engine`; later flows add `extra_routes`."""
    options = settings or ServiceSettings()

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
        return JSONResponse(DOCUMENT)

    async def scrape(request: Request) -> Response:
        figures = await run_in_threadpool(engine.metrics)
        return Response(metrics.render(figures), media_type=metrics.CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
        *api.routes(engine),
        *dashboard.routes(engine),
        *extra_routes,
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, token=options.token)],
        exception_handlers={
            api.BadParameter: _bad_parameter,
            TransientError: _unavailable,
        },
    )


class _Guard(BaseHTTPMiddleware):
    """Every request but the liveness probe carries the token, when there is one; a browser
    that came with ``?token=`` keeps it in a cookie."""

    def __init__(self, app: object, token: str | None) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not auth.allowed(request, self.token):
            return JSONResponse(
                {"error": "a token is required (Authorization: Bearer ...)"}, status_code=401
            )
        response = await call_next(request)
        if self.token and request.query_params.get("token") == self.token:
            response.set_cookie(auth.COOKIE, self.token, httponly=True, samesite="strict")
        return response


async def _bad_parameter(request: Request, exc: Exception) -> Response:
    return api.problem(400, str(exc))


async def _unavailable(request: Request, exc: Exception) -> Response:
    return api.problem(503, f"the database is unreachable: {exc}")
