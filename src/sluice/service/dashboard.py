"""The dashboard: server-rendered pages over the ledger that need no JavaScript and refresh
themselves.

    /                 feeds and their units by status, throughput over the last 3 hours, the
                      units in hand, the last errors, the last runs, the serving views
    /loads            the latest loads, filtered by feed and status
    /loads/{id}       everything about one load

Every figure comes from `Engine` calls (run in a thread: the engine is synchronous). Every
text that comes from the ledger — keys, feed names, error messages — goes through Jinja's
autoescape, and the pages forbid scripts outright (a Content-Security-Policy), so a hostile key
or value is shown as the characters it is. While the database is unreachable every page says
so (HTTP 503) and keeps refreshing until it is back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sluice.api import Engine
from sluice.errors import ConfigError, TransientError
from sluice.ledger.records import LeasedUnit, UnitRecord
from sluice.ledger.states import Status
from sluice.render import duration
from sluice.status import FeedEntry, StatusReport, ThroughputPoint
from sluice.text import visible

#: Seconds between two reloads of a page (a ``<meta http-equiv="refresh">``).
REFRESH_SECONDS = 10
#: The minutes the throughput charts cover.
WINDOW_MINUTES = 180
ERRORS_SHOWN = 20
RUNS_SHOWN = 10
LOADS_SHOWN = 100
#: The row counts of a run (`RunEntry.rows`) and how the runs table names them.
ROW_PARTS = (
    ("in", "in"),
    ("inserted", "new"),
    ("updated", "updated"),
    ("unchanged", "unchanged"),
    ("rejected", "rejected"),
    ("deleted", "deleted"),
)
#: Statuses counted as done, and as waiting, in the key figures.
DONE = (Status.LOADED, Status.ARCHIVED)
WAITING = (Status.READY, Status.READY_FOR_INGESTING)

#: No script may run on these pages, whatever a key or a message holds; styles and images come
#: from the service itself only.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[Request], Awaitable[Response]]


def routes(engine: Engine) -> list[BaseRoute]:
    """The dashboard's pages and its stylesheet."""

    @_unreachable_notice
    async def overview(request: Request) -> Response:
        data = await run_in_threadpool(_read_overview, engine)
        return _render(request, "overview.html", **data.context())

    @_unreachable_notice
    async def loads(request: Request) -> Response:
        feed = request.query_params.get("feed") or None
        status = request.query_params.get("status") or None
        if status is not None and status not in set(Status):
            message = f"unknown status {status!r} (one of: {', '.join(Status)})"
            return _refusal(request, 400, "Bad request", message)
        try:
            found, feeds = await run_in_threadpool(_read_loads, engine, feed, status)
        except ConfigError as exc:
            return _refusal(request, 404, "Not found", str(exc))
        return _render(
            request,
            "loads.html",
            loads=found,
            feeds=[entry.name for entry in feeds],
            statuses=list(Status),
            feed=feed,
            status=status,
            limit=LOADS_SHOWN,
        )

    @_unreachable_notice
    async def load(request: Request) -> Response:
        raw = request.path_params["load_id"]
        try:
            found = await run_in_threadpool(engine.load, _load_id(raw))
        except ValueError:
            return _refusal(request, 404, "Not found", f"there is no load {visible(raw)}")
        except ConfigError as exc:
            return _refusal(request, 404, "Not found", str(exc))
        return _render(
            request, "load.html", load=found, fields=load_fields(found), detail=error_detail(found)
        )

    static = StaticFiles(packages=[("sluice.service", "static")])
    return [
        Route("/", overview, methods=["GET"]),
        Route("/loads", loads, methods=["GET"]),
        Route("/loads/{load_id}", load, methods=["GET"]),
        Mount("/static", app=static, name="static"),
    ]


def _load_id(raw: str) -> int:
    """A load id from a URL: a positive integer that fits the ledger's bigint."""
    load_id = int(raw)
    if not 0 < load_id < 2**63:
        raise ValueError(raw)
    return load_id


def _unreachable_notice(page: Handler) -> Handler:
    """A page that says the database is unreachable (503) instead of failing, and keeps
    refreshing, so that it shows the ledger again by itself once the database is back."""

    @functools.wraps(page)
    async def guarded(request: Request) -> Response:
        try:
            return await page(request)
        except TransientError as exc:
            return _render(
                request,
                "unreachable.html",
                status_code=503,
                headers={"Retry-After": str(REFRESH_SECONDS)},
                error=str(exc),
            )

    return guarded


# -- what the pages read ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeedLine:
    """One row of the feeds table: a feed's units per status, and how the feed stands."""

    name: str
    counts: Mapping[str, int]
    entry: FeedEntry | None


@dataclass(frozen=True)
class Overview:
    report: StatusReport
    feeds: list[FeedEntry]
    points: list[ThroughputPoint]
    now: datetime

    def context(self) -> dict[str, Any]:
        report = self.report
        statuses = statuses_shown(report.loads)
        return {
            "report": report,
            "feeds": feed_lines(report.loads, self.feeds),
            "statuses": statuses,
            "totals": totals(report, self.points),
            "charts": throughput_charts(self.points, self.now),
            "lease_state": lease_state,
            "row_parts": ROW_PARTS,
        }


def _read_overview(engine: Engine) -> Overview:
    return Overview(
        report=engine.status(errors=ERRORS_SHOWN, runs=RUNS_SHOWN),
        feeds=engine.feeds_overview(),
        points=engine.throughput(WINDOW_MINUTES),
        now=datetime.now(UTC),
    )


def _read_loads(
    engine: Engine, feed: str | None, status: str | None
) -> tuple[list[UnitRecord], list[FeedEntry]]:
    return engine.loads(feed=feed, status=status, limit=LOADS_SHOWN), engine.feeds_overview()


def statuses_shown(loads: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The statuses some feed has units in, in the order of the state machine."""
    present = {status for counts in loads.values() for status in counts}
    known = [str(status) for status in Status if status in present]
    return known + sorted(present - set(known))


def feed_lines(
    loads: Mapping[str, Mapping[str, int]], feeds: Sequence[FeedEntry]
) -> list[FeedLine]:
    """Every registered feed (one without units too), and any feed the counts name."""
    entries = {entry.name: entry for entry in feeds}
    names = sorted(set(entries) | set(loads))
    return [FeedLine(name, loads.get(name, {}), entries.get(name)) for name in names]


def totals(report: StatusReport, points: Sequence[ThroughputPoint]) -> dict[str, int]:
    """The key figures at the top of the overview."""

    def count(statuses: Iterable[str]) -> int:
        wanted = set(statuses)
        return sum(n for counts in report.loads.values() for s, n in counts.items() if s in wanted)

    return {
        "loaded": count(DONE),
        "errored": count([Status.ERRORED]),
        "waiting": count(WAITING),
        "in_hand": len(report.leased),
        "stuck": sum(unit.stuck for unit in report.leased),
        "rows": sum(point.rows for point in points),
        "bytes": sum(point.bytes for point in points),
    }


def lease_state(unit: LeasedUnit) -> str:
    """What becomes of a unit in hand, in the words of ``sluice status``."""
    if not unit.owner_alive:
        return "stuck: owner gone, returns to the queue at the next claim"
    if unit.stuck:
        return "lease expired"
    return f"{duration(unit.lease_left_seconds)} left"


def load_fields(load: UnitRecord) -> list[tuple[str, Any]]:
    """Every field of a load, in the record's order, its row counts under their column names."""
    shown: list[tuple[str, Any]] = [("object", load.uri)]
    for field in fields(load):
        if field.name == "counts":
            counts = load.counts.as_dict().items()
            shown += [(name if name == "rows_in" else f"rows_{name}", n) for name, n in counts]
        else:
            shown.append((field.name, getattr(load, field.name)))
    return shown


#: The parts of a bad-input error, in the order its message names them.
DETAIL_ORDER = ("object", "line", "column", "reason")


def error_detail(load: UnitRecord) -> list[tuple[str, Any]]:
    """The parts of a load's error (object, line, column, reason, then any others)."""
    detail = load.error_detail or {}
    first = [(name, detail[name]) for name in DETAIL_ORDER if name in detail]
    return first + sorted((k, v) for k, v in detail.items() if k not in DETAIL_ORDER)


# -- the throughput charts, drawn as inline SVG --------------------------------------------------

#: The drawing's size in SVG units, and the plot area inside it (room for the axis labels).
CHART_WIDTH, CHART_HEIGHT = 720, 150
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 64.0, 712.0, 12.0, 122.0
#: Minutes between two labels of the time axis.
TICK_MINUTES = 30


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    minute: datetime
    value: int


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    """One series per minute (rows or bytes), its bars placed in the plot area."""

    name: str
    title: str
    total: int
    peak: int
    bars: list[Bar]
    ticks: list[Tick]
    bytes: bool
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: float = PLOT_LEFT
    right: float = PLOT_RIGHT
    top: float = PLOT_TOP
    bottom: float = PLOT_BOTTOM


def throughput_charts(points: Sequence[ThroughputPoint], now: datetime) -> list[Chart]:
    """Rows per minute and bytes per minute over the window ending at `now`."""
    per_minute: dict[datetime, list[int]] = {}
    for point in points:
        sums = per_minute.setdefault(_minute(point.minute), [0, 0])
        sums[0] += point.rows
        sums[1] += point.bytes
    start = _minute(now) - timedelta(minutes=WINDOW_MINUTES - 1)
    ticks = _ticks(start)
    rows = {minute: sums[0] for minute, sums in per_minute.items()}
    size = {minute: sums[1] for minute, sums in per_minute.items()}
    return [
        _chart("rows", "rows per minute", rows, start, ticks, as_bytes=False),
        _chart("bytes", "bytes per minute", size, start, ticks, as_bytes=True),
    ]


def _chart(
    name: str,
    title: str,
    values: Mapping[datetime, int],
    start: datetime,
    ticks: list[Tick],
    *,
    as_bytes: bool,
) -> Chart:
    step = (PLOT_RIGHT - PLOT_LEFT) / WINDOW_MINUTES
    shown = {m: v for m, v in values.items() if 0 <= _index(start, m) < WINDOW_MINUTES and v > 0}
    peak = max(shown.values(), default=0)
    bars = []
    for minute, value in sorted(shown.items()):
        # at least one unit tall, so that a quiet minute beside a busy one still shows
        height = max(1.0, (PLOT_BOTTOM - PLOT_TOP) * value / peak)
        x = PLOT_LEFT + _index(start, minute) * step
        bars.append(Bar(x, PLOT_BOTTOM - height, max(step - 0.5, 0.5), height, minute, value))
    return Chart(name, title, sum(values.values()), peak, bars, ticks, as_bytes)


def _ticks(start: datetime) -> list[Tick]:
    step = (PLOT_RIGHT - PLOT_LEFT) / WINDOW_MINUTES
    moments = (start + timedelta(minutes=i) for i in range(WINDOW_MINUTES))
    return [
        Tick(PLOT_LEFT + _index(start, m) * step, m.strftime("%H:%M"))
        for m in moments
        if m.minute % TICK_MINUTES == 0
    ]


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _index(start: datetime, minute: datetime) -> int:
    return int((minute - start).total_seconds() // 60)


# -- rendering ----------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """A moment in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "–"


def ago(moment: datetime | None) -> str:
    """How long ago `moment` was: ``42 s``, ``12 min``, ``3.5 h``."""
    if moment is None:
        return ""
    return f"{duration((datetime.now(UTC) - moment).total_seconds())} ago"


def size(n: int | None) -> str:
    """A number of bytes as people read it: ``940 B``, ``2.8 kB``, ``1.2 GB``."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def count(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def shown(value: Any) -> str:
    """A field's value as text: moments in UTC, JSON for structures, a dash for nothing."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return visible(str(value))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sluice.service", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        ago=ago,
        size=size,
        count=count,
        seconds=seconds,
        shown=shown,
        visible=visible,
        duration=duration,
    )
    return env


_TEMPLATES = _environment()


def _render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    refresh: int | None = REFRESH_SECONDS,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page of `template`; its links start at the application's root (a proxy may mount the
    service under a prefix)."""
    html = _TEMPLATES.get_template(template).render(
        base=request.scope.get("root_path", "").rstrip("/"),
        refresh=refresh,
        generated_at=datetime.now(UTC),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={**_HEADERS, **(headers or {})})


def _refusal(request: Request, status_code: int, heading: str, message: str) -> HTMLResponse:
    """A page saying what was asked for is not there (nothing to refresh)."""
    return _render(
        request,
        "missing.html",
        status_code=status_code,
        refresh=None,
        heading=heading,
        message=message,
    )
