"""Human-readable tables of run and status reports (the CLI prints these; ``--json`` does not)."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sluice.runtime.report import RunReport
from sluice.status import StatusReport
from sluice.sync import SyncReport


def run_report(console: Console, report: RunReport) -> None:
    table = Table(title=f"run {report.run_id}: {report.command}", title_justify="left")
    for name in (
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
    ):
        table.add_column(
            name, justify="right" if name not in ("object", "status", "path") else "left"
        )
    for load in sorted(report.loads, key=lambda item: item.key):
        c = load.counts
        table.add_row(
            str(load.load_id),
            load.key,
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
    table.add_section()
    table.add_row(
        "",
        f"{len(report.loads)} loads",
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
    if not report.loads:
        console.print(f"No new object versions ({report.discovered} discovered); nothing to load.")
    for load in report.loads:
        if load.error:
            console.print(f"[bold red]{load.status}[/] load {load.load_id}: {escape(load.error)}")
        if load.rejects_key:
            console.print(f"load {load.load_id}: rejected rows written to {load.rejects_key}")
    for failure in report.feed_errors:
        console.print(
            f"[bold red]feed {escape(failure['feed'])} failed[/]: {escape(failure['error'])}"
        )
    for hook in report.hooks:
        if hook.get("status") == "ok":
            how = "concurrently" if hook["concurrently"] else "(first fill: it was empty)"
            console.print(f"refreshed {hook['view']} {how} in {hook['seconds']:.2f} s")
        else:
            console.print(
                f"[bold red]refresh of {hook['view']} failed[/]: {escape(str(hook.get('error')))}"
            )
    if report.loads and not report.hooks:
        console.print("serving views: nothing changed, no refresh needed")


def status_report(console: Console, report: StatusReport) -> None:
    statuses = sorted({s for counts in report.loads.values() for s in counts})
    loads = Table(title="loads per feed and status", title_justify="left")
    loads.add_column("feed")
    for status in statuses:
        loads.add_column(status, justify="right")
    for feed, counts in sorted(report.loads.items()):
        loads.add_row(feed, *(f"{counts.get(s, 0):,}" for s in statuses))
    console.print(loads if report.loads else "No loads recorded yet.")

    if report.errors:
        errors = Table(title="last errors", title_justify="left")
        for name in ("load", "feed", "status", "attempts", "when", "error"):
            errors.add_column(name, overflow="fold")
        for e in report.errors:
            errors.add_row(
                str(e.load_id), e.feed, e.status, str(e.attempts), _when(e.at), escape(e.error)
            )
        console.print(errors)

    if report.runs:
        runs = Table(title="last runs", title_justify="left")
        for name in (
            "run",
            "command",
            "status",
            "started",
            "seconds",
            "loaded",
            "errored",
            "rows in",
            "new",
            "updated",
            "unchanged",
            "rejected",
            "deleted",
            "view refresh",
        ):
            runs.add_column(name)
        for r in report.runs:
            hooks = (
                ", ".join(
                    f"{h.get('view')} {h.get('seconds', '?')} s"
                    if h.get("status") == "ok"
                    else f"{h.get('view')} FAILED"
                    for h in r.hooks
                )
                or "-"
            )
            runs.add_row(
                str(r.run_id),
                escape(r.command),
                r.status,
                _when(r.started_at),
                f"{r.seconds:.2f}" if r.seconds is not None else "-",
                str(r.loaded),
                str(r.errored),
                f"{r.rows['in']:,}",
                f"{r.rows['inserted']:,}",
                f"{r.rows['updated']:,}",
                f"{r.rows['unchanged']:,}",
                f"{r.rows['rejected']:,}",
                f"{r.rows['deleted']:,}",
                hooks,
            )
        console.print(runs)
        for r in report.runs:
            if r.error:
                console.print(f"run {r.run_id} {r.status}: {r.error}", style="red", markup=False)

    if report.targets:
        targets = Table(title="targets", title_justify="left")
        for name in ("table", "serving view", "view", "last change", "last refresh"):
            targets.add_column(name)
        for t in report.targets:
            state = "-" if not t.serving_view else ("stale" if t.stale else "fresh")
            targets.add_row(
                t.name, t.serving_view or "-", state, _when(t.last_change_at), _when(t.refreshed_at)
            )
        console.print(targets)


def sync_report(console: Console, report: SyncReport) -> None:
    title = "dry run: changes that would be made" if report.dry_run else "sync"
    table = Table(title=title, title_justify="left")
    for name in ("entity", "created", "updated", "deleted", "unchanged"):
        table.add_column(name, justify="left" if name == "entity" else "right")
    for entity, counts in report.totals().items():
        table.add_row(
            entity,
            f"{counts.created:,}",
            f"{counts.updated:,}",
            f"{counts.deleted:,}",
            f"{counts.unchanged:,}",
        )
    console.print(table)
    for scope in report.scopes:
        state = "ok" if scope.ok else f"[bold red]FAILED[/]: {escape(scope.error or '')}"
        console.print(
            f"{scope.name}: {state} ({scope.statements} SQL statements, {scope.seconds:.2f} s)"
        )
    if report.dry_run:
        for scope in report.scopes:
            for entity, action, key in scope.changes:
                console.print(f"  would {action} {entity} {key}", markup=False)
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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
