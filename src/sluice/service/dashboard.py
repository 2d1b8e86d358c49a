"""The dashboard (server-rendered pages). A first page; the full dashboard replaces it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from sluice.api import Engine


def routes(engine: Engine) -> list[BaseRoute]:
    async def index(request: Request) -> Response:
        report = await run_in_threadpool(engine.status)
        total = sum(sum(counts.values()) for counts in report.loads.values())
        return HTMLResponse(f"<!doctype html><title>sluice</title><p>{total} loads</p>")

    return [Route("/", index, methods=["GET"])]
