"""From a submitted document to the v2 reports Ichnaea queues.

Per report: clean it by its version's schema (`sluice.recipes.ichnaea.schemas`), move v0/v1's
flat position fields into ``position``, give cells without a radioType the report's one and
remove the report-level one, and drop the report when no network is left. A report without
a position is kept (only the internal exporter needs one). Wrong types anywhere refuse the
whole request, with every problem by its path.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sluice.intake.lenient import DROP, Problems, Record
from sluice.intake.submission import Report, Submission, invalid
from sluice.recipes.ichnaea.schemas import (
    DEFAULT_SOURCE,
    NETWORK_LISTS,
    POSITION_FIELDS,
    REPORT_V0,
    REPORT_V1,
    REPORT_V2,
)

#: The reason a report without networks is counted under.
NO_NETWORKS = "no_networks"


def parse_v2(document: Any) -> Submission:
    return _parse(document, REPORT_V2, flat=False)


def parse_v1(document: Any) -> Submission:
    return _parse(document, REPORT_V1, flat=True)


def parse_v0(document: Any) -> Submission:
    return _parse(document, REPORT_V0, flat=True)


def _parse(document: Any, schema: Record, *, flat: bool) -> Submission:
    items = _items(document)
    problems = Problems()
    reports: list[Report] = []
    dropped: Counter[str] = Counter()
    at = (None, "items")
    found = problems.found
    clean = schema.clean
    for i, raw in enumerate(items):
        cleaned = clean(raw, (at, i), problems)
        if found:
            continue  # the document is refused: only its problems are still of interest
        report = None if cleaned is DROP else finish(cleaned, flat=flat)
        if report is not None:
            reports.append(Report(report, source_of(report)))
        else:
            dropped[NO_NETWORKS] += 1
    if found:
        raise invalid(problems.found)
    return Submission(reports, dict(dropped))


def _items(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise invalid({"(document)": "the body is not a JSON object"})
    items = document.get("items")
    if items is None:
        raise invalid({"items": "Required"})
    if not isinstance(items, list):
        raise invalid({"items": "is not an array"})
    return items


def finish(report: dict[str, Any], *, flat: bool) -> dict[str, Any] | None:
    """The v2 report, or None when it has no network left."""
    if flat:
        position = {name: report.pop(name) for name in POSITION_FIELDS if name in report}
        if position:
            report["position"] = position
    radio = report.pop("radioType", None)
    if radio:
        for cell in report.get("cellTowers", ()):
            cell.setdefault("radioType", radio)
    for name in NETWORK_LISTS:
        if report.get(name):
            return report
    return None


def source_of(report: dict[str, Any]) -> str:
    position = report.get("position")
    source = position.get("source") if position else None
    return str(source) if source else DEFAULT_SOURCE
