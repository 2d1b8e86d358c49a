"""What a GLAM benchmark run measured, and how it is shown: the JSON line and the tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import keyed, report
from bench.scratch import BenchError
from sluice.recipes.glam.tables import Product, shard_name

PRODUCT: Product = "desktop"
CHANNEL = "nightly"

#: Upper bounds of the ratios to the floor, and of the sluice process's peak RSS.
TARGETS = {"fresh": 1.3, "unchanged": 1.5, "changed": 2.0}
#: The daily cycle end to end (import plus serving copy), and the serving apply alone.
CYCLE_TARGETS = {"cycle_changed": 2.5, "cycle_unchanged": 1.5, "serving_changed": 0.3}
#: The fresh import against the keyed floor (a1).
KEYED_TARGET = 1.0
RSS_TARGET_MB = 256.0

LOAD_TIME = "sluice load time = the run's seconds minus its serving work"


# -- options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    rows: int
    change: float
    keep: bool
    database: str


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """The generations: `bucket` holds the first; the others are moved into it in turn."""

    bucket: Path
    unchanged: Path
    changed: Path
    bytes: int
    changed_rows: int

    @property
    def shard(self) -> str:
        return shard_name(PRODUCT, CHANNEL, 0)


@dataclass(frozen=True)
class SeedResult:
    seconds: float
    copy_seconds: float
    upsert_seconds: float
    rows: int


@dataclass(frozen=True)
class SluiceResult:
    label: str
    wall_seconds: float
    run_seconds: float
    loads_seconds: float
    refreshes: list[float]
    peak_rss_mb: float
    discovered: int
    loaded: int
    counts: Mapping[str, int]
    paths: list[str]
    #: Seconds per phase of the bulk path (copy, index, ...), summed over the loads.
    phases: Mapping[str, float] = field(default_factory=dict)
    #: What each serving hook did: build, apply, fill (incremental); fill, refresh (matview).
    serving: list[str] = field(default_factory=list)

    @property
    def refresh_seconds(self) -> float:
        return sum(self.refreshes, 0.0)

    @property
    def load_seconds(self) -> float:
        """What the load ratios use: the run without its serving work."""
        return self.run_seconds - self.refresh_seconds

    @property
    def cycle_seconds(self) -> float:
        """The daily cycle end to end: the import and its serving work (the run's seconds)."""
        return self.run_seconds


@dataclass
class Results:
    options: Options
    server_version: str
    database: str
    files: Files
    #: The median of the floor's samples (each a COPY of the file as in (a)).
    floor_seconds: float = 0.0
    floor_samples: list[float] = field(default_factory=list)
    keyed_one: keyed.KeyedResult | None = None
    keyed_split: keyed.KeyedResult | None = None
    seed_fresh: SeedResult | None = None
    seed_reimport: SeedResult | None = None
    fresh: SluiceResult | None = None
    unchanged: SluiceResult | None = None
    changed: SluiceResult | None = None
    #: The same imports with a materialized view for serving copy: fresh, unchanged, changed.
    matview: dict[str, SluiceResult] = field(default_factory=dict)
    checkpoint: bool = True
    warnings: list[str] = field(default_factory=list)


# -- output ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Complete:
    """Results of a finished run, every step present."""

    floor: float
    floor_samples: list[float]
    keyed_one: keyed.KeyedResult
    keyed_split: keyed.KeyedResult
    seed_fresh: SeedResult
    seed_reimport: SeedResult
    runs: dict[str, SluiceResult]  # fresh, unchanged, changed
    matview: dict[str, SluiceResult]  # the same, served by a materialized view


def _complete(results: Results) -> _Complete:
    r = results
    if not (
        r.keyed_one
        and r.keyed_split
        and r.seed_fresh
        and r.seed_reimport
        and r.fresh
        and r.unchanged
        and r.changed
        and set(r.matview) == {"fresh", "unchanged", "changed"}
    ):
        raise BenchError("the run ended before every step was measured")
    runs = {"fresh": r.fresh, "unchanged": r.unchanged, "changed": r.changed}
    return _Complete(
        r.floor_seconds,
        r.floor_samples,
        r.keyed_one,
        r.keyed_split,
        r.seed_fresh,
        r.seed_reimport,
        runs,
        r.matview,
    )


def figures(results: Results) -> dict[str, Any]:
    """The JSON line: the five headline figures first, details after."""
    done = _complete(results)
    floor, runs = done.floor, done.runs

    def r3(value: float) -> float:
        return round(value, 3)

    ratios = {name: r3(run.load_seconds / floor) for name, run in runs.items()}
    cycles = {
        "cycle_changed": r3(runs["changed"].cycle_seconds / floor),
        "cycle_unchanged": r3(runs["unchanged"].cycle_seconds / floor),
        "serving_changed": r3(runs["changed"].refresh_seconds / floor),
    }
    matview = done.matview
    peak = max(run.peak_rss_mb for run in runs.values())
    fresh_vs_keyed = r3(runs["fresh"].load_seconds / done.keyed_one.seconds)
    return {
        **ratios,
        **cycles,
        "seed_vs_sluice": r3(done.seed_fresh.seconds / runs["fresh"].load_seconds),
        "peak_rss_mb": round(peak, 1),
        "seed_reimport_vs_sluice": r3(done.seed_reimport.seconds / runs["changed"].load_seconds),
        "seed_fresh_vs_floor": r3(done.seed_fresh.seconds / floor),
        "seed_reimport_vs_floor": r3(done.seed_reimport.seconds / floor),
        "keyed_one_vs_floor": r3(done.keyed_one.seconds / floor),
        "keyed_split_vs_floor": r3(done.keyed_split.seconds / floor),
        "fresh_vs_keyed_one": fresh_vs_keyed,
        "matview_cycle_changed": r3(matview["changed"].cycle_seconds / floor),
        "matview_cycle_unchanged": r3(matview["unchanged"].cycle_seconds / floor),
        "matview_serving_changed": r3(matview["changed"].refresh_seconds / floor),
        "rows": results.options.rows,
        "bytes": results.files.bytes,
        "change": results.options.change,
        "changed_rows": results.files.changed_rows,
        "seconds": {
            "floor": r3(floor),
            "floor_samples": [r3(f) for f in results.floor_samples],
            "keyed_one": r3(done.keyed_one.seconds),
            "keyed_split": r3(done.keyed_split.seconds),
            "seed_fresh": r3(done.seed_fresh.seconds),
            "seed_reimport": r3(done.seed_reimport.seconds),
            **{f"sluice_{name}": r3(run.load_seconds) for name, run in runs.items()},
            **{f"cycle_{name}": r3(run.cycle_seconds) for name, run in runs.items()},
            **{f"matview_cycle_{name}": r3(run.cycle_seconds) for name, run in matview.items()},
        },
        "wall_seconds": {name: r3(run.wall_seconds) for name, run in runs.items()},
        "refresh_seconds": {name: r3(run.refresh_seconds) for name, run in runs.items()},
        "matview_refresh_seconds": {name: r3(run.refresh_seconds) for name, run in matview.items()},
        "refreshes": {name: len(run.refreshes) for name, run in runs.items()},
        "serving": {name: run.serving for name, run in runs.items()},
        "peak_rss_mb_by_step": {name: round(run.peak_rss_mb, 1) for name, run in runs.items()},
        "load_time": "run seconds minus serving work",
        "cycle_time": "run seconds: import plus serving work",
        "targets": {
            **TARGETS,
            **CYCLE_TARGETS,
            "fresh_vs_keyed_one": KEYED_TARGET,
            "peak_rss_mb": RSS_TARGET_MB,
        },
        "met": {
            **{name: ratios[name] <= limit for name, limit in TARGETS.items()},
            **{name: cycles[name] <= limit for name, limit in CYCLE_TARGETS.items()},
            "fresh_vs_keyed_one": fresh_vs_keyed <= KEYED_TARGET,
            "unchanged_no_refresh": not runs["unchanged"].refreshes,
            "peak_rss_mb": peak <= RSS_TARGET_MB,
        },
        "checkpoint": results.checkpoint,
        "server": results.server_version.split()[0] if results.server_version else "",
        "warnings": results.warnings,
    }


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def print_results(results: Results) -> None:
    """The readable tables, then the JSON line last."""
    data = figures(results)
    done = _complete(results)
    options = results.options
    pct = f"{options.change:.0%}"
    print()
    print(
        f"GLAM desktop import benchmark: {options.rows:,} rows in one "
        f"{results.files.bytes / 1e6:,.1f} MB file; the changed generation gives new values "
        f"to {results.files.changed_rows:,} rows ({pct})"
    )
    print(f"server: PostgreSQL {results.server_version}; scratch database {results.database}")
    if not results.checkpoint:
        print("note: CHECKPOINT was not allowed; steps did not start from a flushed state")
    print()
    _print_steps(done, pct)
    print()
    _print_seed(done, pct)
    print()
    _print_sluice(done)
    print()
    _print_cycles(done, data, pct)
    print()
    _print_summary(data, pct)
    if results.warnings:
        print()
        for problem in results.warnings:
            print(f"WARNING: {problem}")
    print()
    print(json.dumps(data))


def _print_steps(done: _Complete, pct: str) -> None:
    floor = done.floor

    def step(name: str, value: float, key: str | None = None) -> list[str]:
        ratio = round(value / floor, 3)  # as in the JSON line, so both print the same
        target = f"≤ {TARGETS[key]}×" if key else ""
        verdict = _verdict(ratio, TARGETS[key]) if key else ""
        return [name, report.seconds(value), report.ratio(ratio), target, verdict]

    runs = done.runs
    rows = [
        step("(a) floor: COPY into unlogged, index-free table", floor),
        step("(a1) keyed floor: logged COPY + 2 keys, 1 xact", done.keyed_one.seconds),
        step("(a2) keyed floor, split over 2 sessions", done.keyed_split.seconds),
        step("(b) seed, fresh: tmp table + COPY + upsert", done.seed_fresh.seconds),
        step(f"    seed, re-import ({pct} changed)", done.seed_reimport.seconds),
        step("(c) sluice, fresh", runs["fresh"].load_seconds, "fresh"),
        step("(d) sluice, re-import, unchanged rows", runs["unchanged"].load_seconds, "unchanged"),
        step(f"(e) sluice, re-import, {pct} changed", runs["changed"].load_seconds, "changed"),
    ]
    print(report.table(["step", "seconds", "× floor", "target", ""], rows, right=[1, 2]))
    print(f"({LOAD_TIME}; (a), (a1), (a2) and (b) are timed around their SQL only)")
    print(
        "(a) is the median of the floor's samples, taken first, before (d) and before (e): "
        + ", ".join(f"{f:.2f}" for f in done.floor_samples)
        + " s"
    )
    fresh = done.runs["fresh"].phases
    print(
        "COPY s + keys s: "
        + "; ".join(
            f"{label} {k.copy_seconds:.2f} + {k.index_seconds:.2f}"
            for label, k in (("(a1)", done.keyed_one), ("(a2)", done.keyed_split))
        )
        + f"; (c) {fresh.get('copy', 0.0):.2f} + {fresh.get('index', 0.0):.2f}"
    )


def _print_seed(done: _Complete, pct: str) -> None:
    print("seed steps: scratch table + COPY, then INSERT ... ON CONFLICT DO UPDATE")
    rows = [
        [
            label,
            report.seconds(s.copy_seconds),
            report.seconds(s.upsert_seconds),
            report.seconds(s.seconds),
            report.count(s.rows),
        ]
        for label, s in (
            ("(b) fresh", done.seed_fresh),
            (f"(b) re-import, {pct}", done.seed_reimport),
        )
    ]
    header = ["step", "copy s", "upsert s", "total s", "rows upserted"]
    print(report.table(header, rows, right=[1, 2, 3, 4]))


def _print_sluice(done: _Complete) -> None:
    print("sluice commands (child processes of the CLI)")
    rows: list[list[str]] = []
    for label, key in (
        ("(c) fresh", "fresh"),
        ("(d) unchanged", "unchanged"),
        ("(e) changed", "changed"),
    ):
        run = done.runs[key]
        refresh = f"{run.refresh_seconds:.2f}" if run.refreshes else "none"
        if len(run.refreshes) > 1:
            refresh += f" ({len(run.refreshes)} views)"
        rows.append(
            [
                label,
                report.seconds(run.wall_seconds),
                report.seconds(run.run_seconds),
                report.seconds(run.loads_seconds),
                report.seconds(run.load_seconds),
                refresh,
                "+".join(run.paths) or "-",
                report.count(run.counts.get("inserted")),
                report.count(run.counts.get("updated")),
                report.count(run.counts.get("unchanged")),
                f"{run.peak_rss_mb:.0f} MB",
            ]
        )
    header = ["step", "wall s", "run s", "loads s", "load s", "serving s", "path"]
    header += ["inserted", "updated", "unchanged", "peak RSS"]
    print(report.table(header, rows, right=[1, 2, 3, 4, 5, 7, 8, 9, 10]))
    print(
        "wall: the whole command, interpreter start-up included; run: the run's own seconds;\n"
        "loads: the sum of its loads' seconds; load: run minus serving, used for the ratios;\n"
        "serving: the incremental serving copy, built in bulk once (c), then the rows held by\n"
        "the loads released in one transaction (e)."
    )
    unchanged = done.runs["unchanged"].refreshes
    print(
        f"serving copy: (c) {done.runs['fresh'].refresh_seconds:.2f} s, "
        f"(e) {done.runs['changed'].refresh_seconds:.2f} s; (d) "
        + ("none, as expected" if not unchanged else f"{len(unchanged)} (expected none)")
    )


def _print_cycles(done: _Complete, data: dict[str, Any], pct: str) -> None:
    print("the daily cycle end to end: import + serving copy, per step (× the floor (a))")
    floor = done.floor
    targets = {"unchanged": "cycle_unchanged", "changed": "cycle_changed"}
    rows: list[list[str]] = []
    for serving, runs, mark in (("incremental", done.runs, ""), ("matview", done.matview, "'")):
        for key, label in (
            ("fresh", "fresh"),
            ("unchanged", "unchanged"),
            ("changed", f"{pct} changed"),
        ):
            run = runs[key]
            target = targets.get(key) if serving == "incremental" else None
            ratio = round(run.cycle_seconds / floor, 3)
            rows.append(
                [
                    f"({'cde'[('fresh', 'unchanged', 'changed').index(key)]}{mark}) {label}",
                    serving,
                    report.seconds(run.load_seconds),
                    report.seconds(run.refresh_seconds),
                    "+".join(run.serving) or "none",
                    report.ratio(round(run.refresh_seconds / floor, 3)),
                    report.seconds(run.cycle_seconds),
                    report.ratio(ratio),
                    f"≤ {CYCLE_TARGETS[target]}×" if target else "",
                    _verdict(ratio, CYCLE_TARGETS[target]) if target else "",
                ]
            )
    header = ["step", "serving", "import s", "serving s", "serving work", "serving ×"]
    header += ["cycle s", "cycle ×", "target", ""]
    print(report.table(header, rows, right=[2, 3, 5, 6, 7]))
    apply = data["serving_changed"]
    print(
        f"serving apply of the {pct} change: {report.ratio(apply)} the floor "
        f"(target ≤ {CYCLE_TARGETS['serving_changed']}×: {_verdict(apply, 0.3)}); the same "
        f"change through the materialized view: {report.ratio(data['matview_serving_changed'])}"
    )


def _print_summary(data: dict[str, Any], pct: str) -> None:
    rows = [
        [
            short,
            what,
            report.ratio(data[key]),
            f"≤ {TARGETS[key]}×",
            _verdict(data[key], TARGETS[key]),
        ]
        for short, what, key in (
            ("c/a", "sluice fresh / floor", "fresh"),
            ("d/a", "sluice unchanged re-import / floor", "unchanged"),
            ("e/a", f"sluice {pct} changed re-import / floor", "changed"),
        )
    ]
    rows.append(
        [
            "c/a1",
            "sluice fresh / keyed floor",
            report.ratio(data["fresh_vs_keyed_one"]),
            f"≤ {KEYED_TARGET}×",
            _verdict(data["fresh_vs_keyed_one"], KEYED_TARGET),
        ]
    )
    for short, what, key in (
        ("e*/a", f"daily cycle, {pct} changed, end to end / floor", "cycle_changed"),
        ("d*/a", "daily cycle, unchanged, end to end / floor", "cycle_unchanged"),
        ("s/a", f"serving apply of the {pct} change / floor", "serving_changed"),
    ):
        limit = CYCLE_TARGETS[key]
        rows.append(
            [short, what, report.ratio(data[key]), f"≤ {limit}×", _verdict(data[key], limit)]
        )
    rows.append(
        [
            "e'*/a",
            f"the same {pct} cycle with a materialized view",
            report.ratio(data["matview_cycle_changed"]),
            "",
            "",
        ]
    )
    rows.append(
        [
            "a2/a",
            "split keyed floor / floor (least fresh ratio here)",
            report.ratio(data["keyed_split_vs_floor"]),
            "",
            "",
        ]
    )
    rows.append(["b/c", "seed fresh / sluice fresh", report.ratio(data["seed_vs_sluice"]), "", ""])
    rows.append(
        [
            "b'/e",
            "seed re-import / sluice changed re-import",
            report.ratio(data["seed_reimport_vs_sluice"]),
            "",
            "",
        ]
    )
    peak = data["peak_rss_mb"]
    rows.append(
        [
            "RSS",
            "peak RSS of the sluice process, max of (c)(d)(e)",
            f"{peak:.0f} MB",
            f"≤ {RSS_TARGET_MB:.0f} MB",
            _verdict(peak, RSS_TARGET_MB),
        ]
    )
    print(report.table(["", "figure", "value", "target", ""], rows, right=[2]))
