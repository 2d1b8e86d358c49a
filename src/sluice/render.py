"""Human-readable tables of the reports the CLI prints (``--json`` prints them as they are).

Every piece of text that comes from outside the program — object keys, feed names, error
messages, commands, query results — is wrapped in `rich.text.Text`, which rich prints
literally: a key such as ``[bold red]x.csv`` or ``:x:`` shows as it is, never as markup or an
emoji.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sluice.ledger.records import LeasedUnit, UnitRecord
from sluice.runtime.report import RunReport
from sluice.runtime.service import ServiceReport
from sluice.status import FeedEntry, RunEntry, StatusReport, ViewEntry
from sluice.sync import SyncReport

FAILED = "bold red"


def literal(value: object) -> Text:
    """`value` as text printed exactly as it is."""
    return Text("-" if value is None else str(value))


def titled_table(title: str, columns: Iterable[str], *, right: Iterable[str] = ()) -> Table:
    """An empty table titled `title` with `columns`, those in `right` aligned right."""
    table = Table(title=literal(title), title_justify="left")
    aligned = set(right)
    for name in columns:
        table.add_column(name, justify="right" if name in aligned else "left")
    return table


# -- runs -----------------------------------------------------------------------------------------

_RUN_COLUMNS = (
    "load",
    "object",
    "status",
    "rows in",
    "new",
    "updated",
    "unchanged",
    "rejected",
    "path",
    "seconds",
)
_COUNT_COLUMNS = ("load", "rows in", "new", "updated", "unchanged", "rejected", "seconds")


def run_report(console: Console, report: RunReport) -> None:
    table = titled_table(
        f"run {report.run_id}: {report.command}", _RUN_COLUMNS, right=_COUNT_COLUMNS
    )
    for load in sorted(report.loads, key=lambda item: item.key):
        c = load.counts
        table.add_row(
            str(load.load_id),
            literal(load.key),
            load.status,
            f"{c.rows_in:,}",
            f"{c.inserted:,}",
            f"{c.updated:,}",
            f"{c.unchanged:,}",
            f"{c.rejected:,}",
            load.path,
            f"{load.seconds:.2f}",
        )
    total = report.counts
    units, attempts = len(report.final()), len(report.loads)
    # Units once each: a load retried within the run is one load of several attempts.
    loads = f"{units} loads" + (f" ({attempts} attempts)" if attempts != units else "")
    table.add_section()
    table.add_row(
        "",
        loads,
        f"{report.count('loaded')} loaded",
        f"{total.rows_in:,}",
        f"{total.inserted:,}",
        f"{total.updated:,}",
        f"{total.unchanged:,}",
        f"{total.rejected:,}",
        "",
        f"{report.seconds:.2f}",
    )
    console.print(table)
    _run_notes(console, report)


def _run_notes(console: Console, report: RunReport) -> None:
    if not report.loads:
        console.print(f"No new object versions ({report.discovered} discovered); nothing to load.")
    for load in report.loads:
        if load.error:
            console.print(
                Text.assemble((load.status, FAILED), f" load {load.load_id}: ", load.error)
            )
        if load.rejects_key:
            console.print(Text(f"load {load.load_id}: rejected rows written to {load.rejects_key}"))
    for failure in report.feed_errors:
        console.print(
            Text.assemble((f"feed {failure['feed']} failed", FAILED), ": ", failure["error"])
        )
    for hook in report.hooks:
        if hook.get("status") == "ok":
            console.print(Text(f"{_serving_done(hook)} in {hook['seconds']:.2f} s"))
        else:
            console.print(
                Text.assemble(
                    (f"refresh of {hook['view']} failed", FAILED), ": ", str(hook.get("error"))
                )
            )
    if report.loads and not report.hooks:
        console.print("serving copies: nothing changed, nothing to refresh")
    if report.interrupted:
        console.print(Text(report.interrupted, style=FAILED))


def _serving_done(hook: dict[str, Any]) -> str:
    """What a serving hook did, in words."""
    view, method = hook["view"], hook.get("method")
    if method == "apply":
        return f"applied {hook.get('keys', 0):,} changed keys to {view}"
    if method == "build":
        return f"built {view} ({hook.get('keys', 0):,} rows)"
    how = "concurrently" if hook.get("concurrently") else "(first fill: it was empty)"
    return f"refreshed {view} {how}"


def service_report(console: Console, report: ServiceReport) -> None:
    """The end of ``sluice run``: what the service did while it ran."""
    c = report.counts
    how = "stopped" if report.stopped else "done"
    console.print(
        Text(
            f"run {report.run_id} {how} after {report.seconds:.2f} s: {c.discovered:,} new, "
            f"{c.claimed:,} claimed, {c.done:,} loaded, {c.errored:,} errored, "
            f"{c.retried:,} to retry; rows {c.rows.rows_in:,} in, {c.rows.inserted:,} new, "
            f"{c.rows.updated:,} updated, {c.rows.unchanged:,} unchanged, "
            f"{c.rows.rejected:,} rejected"
        )
    )
    if report.cancelled:
        console.print(Text(f"{report.cancelled} unit(s) cancelled at the end of the grace period"))
    for failure in report.feed_errors:
        console.print(
            Text.assemble((f"feed {failure['feed']} failed", FAILED), ": ", failure["error"])
        )
    for hook in c.hooks:
        if hook.get("status") == "error":
            console.print(
                Text.assemble(
                    (f"refresh of {hook.get('view')} failed", FAILED), ": ", str(hook.get("error"))
                )
            )


def summary(console: Console, title: str, values: Mapping[str, Any]) -> None:
    """A report known only by its ``as_dict()``: one row per entry."""
    table = titled_table(title, ("", "value"))
    for name, value in values.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        table.add_row(literal(name), literal(shown))
    console.print(table)


# -- status ---------------------------------------------------------------------------------------


def status_report(console: Console, report: StatusReport) -> None:
    _loads_per_feed(console, report.loads)
    if report.days:
        _days_per_feed(console, report.days)
    if report.leased:
        console.print(in_hand(report.leased))
    if report.errors:
        errors = titled_table(
            "last errors", ("load", "feed", "status", "attempts", "when", "error")
        )
        for column in errors.columns:
            column.overflow = "fold"
        for e in report.errors:
            errors.add_row(
                str(e.load_id),
                literal(e.feed),
                e.status,
                str(e.attempts),
                _when(e.at),
                literal(e.error),
            )
        console.print(errors)
    if report.runs:
        console.print(runs_table(report.runs))
        for r in report.runs:
            if r.error:
                console.print(Text(f"run {r.run_id} {r.status}: {r.error}", style="red"))
    if report.targets:
        _targets(console, report)
    if report.views:
        _views(console, report.views)


def _views(console: Console, views: Sequence[ViewEntry]) -> None:
    """The current views: their snapshot, rows, and how far behind the newest change is."""
    columns = ("view", "snapshot", "rows", "newest change", "lag")
    table = titled_table("current views", columns, right=("rows", "lag"))
    for v in views:
        lag = "-" if v.lag_seconds is None else duration(v.lag_seconds)
        table.add_row(
            literal(v.view), _when(v.snapshot), f"{v.rows:,}", _when(v.newest_change), lag
        )
    console.print(table)


def _loads_per_feed(console: Console, loads: dict[str, dict[str, int]]) -> None:
    if not loads:
        console.print("No loads recorded yet.")
        return
    statuses = sorted({s for counts in loads.values() for s in counts})
    table = titled_table("loads per feed and status", ("feed", *statuses), right=statuses)
    for feed, counts in sorted(loads.items()):
        table.add_row(literal(feed), *(f"{counts.get(s, 0):,}" for s in statuses))
    console.print(table)


def _days_per_feed(console: Console, days: dict[str, dict[str, int]]) -> None:
    statuses = sorted({s for counts in days.values() for s in counts})
    table = titled_table("export days per feed and status", ("feed", *statuses), right=statuses)
    for feed, counts in sorted(days.items()):
        table.add_row(literal(feed), *(f"{counts.get(s, 0):,}" for s in statuses))
    console.print(table)


def in_hand(units: Sequence[LeasedUnit]) -> Table:
    """The units workers hold now, and what becomes of those whose holder is gone."""
    table = titled_table(
        "in hand", ("load", "feed", "key", "status", "owner", "pid", "age", "lease"), right=["age"]
    )
    table.columns[-1].no_wrap = True
    for unit in units:
        table.add_row(
            str(unit.id),
            literal(unit.feed),
            literal(unit.key),
            unit.status,
            literal(unit.owner),
            literal(unit.pid),
            duration(unit.age_seconds),
            lease_state(unit),
        )
    return table


def lease_state(unit: LeasedUnit) -> Text:
    if not unit.owner_alive:
        return Text("stuck: owner gone, returns to the queue at the next claim", style=FAILED)
    if unit.stuck:
        return Text("lease expired", style=FAILED)
    return Text(f"{duration(unit.lease_left_seconds)} left")


#: The keys of `RunEntry.rows`, in the order of the columns "rows in" to "deleted".
_ROW_KEYS = ("in", "inserted", "updated", "unchanged", "rejected", "deleted")


def runs_table(runs: Sequence[RunEntry]) -> Table:
    """The last runs, each counted in the units of its kind (a sync counts scopes)."""
    columns = ("run", "kind", "command", "status", "started", "seconds", "done", "errored")
    rows = ("rows in", "new", "updated", "unchanged", "rejected", "deleted")
    table = titled_table("last runs", (*columns, *rows, "serving"), right=("seconds", *rows))
    table.columns[columns.index("started")].no_wrap = True
    for r in runs:
        table.add_row(
            str(r.run_id),
            r.kind,
            literal(r.command),
            r.status,
            _when(r.started_at),
            f"{r.seconds:.2f}" if r.seconds is not None else "-",
            units(r.loaded, r.units),
            units(r.errored, r.units),
            *(f"{r.rows[name]:,}" for name in _ROW_KEYS),
            literal(_hooks(r.hooks)),
        )
    return table


def units(count: int, unit: str) -> str:
    """``1 load``, ``3 scopes``: a count in the unit of a run's kind."""
    word = unit[:-1] if count == 1 and unit.endswith("s") else unit
    return f"{count:,} {word}"


def _hooks(hooks: Sequence[dict[str, Any]]) -> str:
    shown = [
        f"{h.get('view')} {h.get('seconds', '?')} s"
        if h.get("status") == "ok"
        else f"{h.get('view')} FAILED"
        for h in hooks
    ]
    return ", ".join(shown) or "-"


def _targets(console: Console, report: StatusReport) -> None:
    headers = ("table", "serving copy", "kind", "state", "pending keys", "last change")
    table = titled_table("targets", (*headers, "last refresh"), right=("pending keys",))
    for t in report.targets:
        kind, pending = t.serving_kind, t.pending_keys
        state = "-" if not t.serving_view else ("stale" if t.stale else "current")
        table.add_row(
            literal(t.name),
            literal(t.serving_view),
            kind or "-",
            state,
            f"{pending:,}" if kind == "incremental" else "-",
            _when(t.last_change_at),
            _when(t.refreshed_at),
        )
    console.print(table)


# -- loads and feeds ------------------------------------------------------------------------------


def loads_table(console: Console, loads: Sequence[UnitRecord]) -> None:
    if not loads:
        console.print("No loads match.")
        return
    rows = ("rows in", "new", "updated", "unchanged", "rejected")
    columns = ("load", "feed", "object", "status", "attempts", *rows, "finished", "error")
    table = titled_table("loads, newest first", columns, right=("attempts", *rows))
    table.columns[-1].overflow = "fold"
    for load in loads:
        c = load.counts
        table.add_row(
            str(load.id),
            literal(load.feed),
            literal(load.key),
            load.status,
            str(load.attempts),
            *(f"{n:,}" for n in (c.rows_in, c.inserted, c.updated, c.unchanged, c.rejected)),
            _when(load.finished_at),
            literal(load.error or ""),
        )
    console.print(table)


def load_detail(console: Console, load: UnitRecord) -> None:
    """Every field of one load, one per line."""
    table = Table(title=literal(f"load {load.id}"), title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in load.as_dict().items():
        if isinstance(value, dict):
            value = json.dumps(value, default=str, ensure_ascii=False)
        table.add_row(name, literal(value))
    console.print(table)


def feeds_table(console: Console, feeds: Sequence[FeedEntry]) -> None:
    if not feeds:
        console.print("No feeds are registered yet (a feed is registered by its first run).")
        return
    counts = ("waiting", "in hand", "done", "errored")
    columns = ("feed", "kind", "state", "schedule", "source", *counts, "last scan", "next scan")
    table = titled_table("feeds", columns, right=counts)
    for f in feeds:
        table.add_row(
            literal(f.name),
            f.kind,
            Text("active") if f.active else Text("paused", style="yellow"),
            literal(f.schedule),
            literal(f"{f.source} {f.pattern}"),
            f"{f.waiting:,}",
            f"{f.leased:,}",
            f"{f.done:,}",
            f"{f.errored:,}",
            _when(f.last_scan_at),
            _when(f.next_scan_at),
        )
    console.print(table)
    for f in feeds:
        if f.scan_error:
            console.print(
                Text.assemble((f"feed {f.name}: last scan failed", FAILED), ": ", f.scan_error)
            )


# -- syncs and queries ----------------------------------------------------------------------------


def sync_report(console: Console, report: SyncReport) -> None:
    title = "dry run: changes that would be made" if report.dry_run else "sync"
    table = titled_table(title, ("entity", "created", "updated", "deleted", "unchanged"))
    for column in table.columns[1:]:
        column.justify = "right"
    for entity, counts in report.totals().items():
        table.add_row(
            literal(entity),
            f"{counts.created:,}",
            f"{counts.updated:,}",
            f"{counts.deleted:,}",
            f"{counts.unchanged:,}",
        )
    console.print(table)
    for scope in report.scopes:
        state = (
            Text("ok") if scope.ok else Text.assemble(("FAILED", FAILED), ": ", scope.error or "")
        )
        console.print(
            Text.assemble(
                f"{scope.name}: ",
                state,
                f" ({scope.statements} SQL statements, {scope.seconds:.2f} s)",
            )
        )
    if report.dry_run:
        for scope in report.scopes:
            for entity, action, key in scope.changes:
                console.print(Text(f"  would {action} {entity} {key}"))
    _sync_notes(console, report)


def _sync_notes(console: Console, report: SyncReport) -> None:
    requests = report.requests
    console.print(
        f"store: {requests.get('lists', 0)} listings ({requests.get('pages', 0)} pages, "
        f"{requests.get('listed', 0)} objects), {requests.get('gets', 0)} documents read, "
        f"{requests.get('heads', 0)} heads"
    )
    if not report.scopes:
        console.print("No dataset matched.")
    elif not report.changed:
        console.print("Nothing changed.")


def rows_table(console: Console, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Query results as a table (NULL for SQL nulls)."""
    table = Table()
    for column in columns:
        table.add_column(literal(column))
    for row in rows:
        table.add_row(*(Text("NULL") if v is None else literal(v) for v in row))
    console.print(table)


# -- values ---------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.5 h``; negative durations (a lease overdue) keep their sign."""
    sign, left = ("-" if seconds < 0 else ""), abs(seconds)
    if left < 120:
        return f"{sign}{left:.0f} s"
    if left < 7200:
        return f"{sign}{left / 60:.0f} min"
    return f"{sign}{left / 3600:.1f} h"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
