"""Realistic mozaggregator sources: day tables in a PostgreSQL schema, like the real ones.

Names ``{type}_{channel}_{version}_{YYYYMMDD}`` over every channel, with the odd versions
``0`` and ``1`` among them; ``dimensions`` with the seven keys (keyed labels; ``child`` as
``"true"``/``"false"``/``"gpu"`` and, in old rows, as JSON booleans; keys missing in old rows;
labels with backslashes, quotes, tabs, line breaks and non-ASCII; a NULL ``dimensions`` now
and then); histograms of realistic lengths (flags, enumerations, exponential and count
histograms) whose sums pass 2^31, a few near 2^63; and the GIN index on ``dimensions``.
Every row is a pure function of (table, row number), so a source is reproducible.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from sluice.export.source import SourceReader
from sluice.formats.pgcopy import escape
from sluice.recipes.mozagg.tables import CHANNELS, spec, table_name

_METRICS = (
    ("A11Y_INSTANTIATED_FLAG", 2),
    ("A11Y_CONSUMERS", 12),
    ("GC_MS", 50),
    ("CYCLE_COLLECTOR_MAX_PAUSE", 50),
    ("HTTP_PAGE_DNS_LOOKUP_TIME", 20),
    ("SIMPLE_MEASURES_UPTIME", 50),
    ("[[COUNT]]_GC_MS", 100),
    ("SCALARS_BROWSER.ENGAGEMENT.TAB_OPEN_EVENT_COUNT", 100),
    ("DEVTOOLS_TOOLBOX_OPENED_COUNT", 3),
    ("FX_TAB_SWITCH_TOTAL_MS", 20),
)
_KEYED = {"SCALARS_BROWSER.ENGAGEMENT.TAB_OPEN_EVENT_COUNT", "A11Y_CONSUMERS"}
_LABELS = ("", "reader\\mode", 'say "hi"', "tab\there", "line\nbreak", "ünïcödé ✓", "plain")
_OSES = (
    ("Windows_NT", ("6.1", "6.3", "10.0")),
    ("Darwin", ("19.0", "18.7")),
    ("Linux", ("5.4", "4.1")),
)
_ARCH = ("x86", "x86-64", "aarch64")
_APPS = ("Firefox", "Fennec")
#: Distinct rows per table (a prime, so that the pool's rows mix with the metrics' cycle).
_POOL = 1021
#: Rows joined per write.
_BATCH = 4096
#: Before this day, ``child`` was a JSON boolean and some keys were not written yet.
OLD_ROWS_BEFORE = date(2017, 3, 1)


@dataclass
class GenerateReport:
    tables: list[str] = field(default_factory=list)
    rows: int = 0
    dumps: list[str] = field(default_factory=list)


def day_tables(kind: str, day: date, count: int) -> list[str]:
    """`count` table names of a day: every channel, the odd versions 0 and 1 first."""
    base = 40 + (day - date(2015, 6, 1)).days // 42  # a major version every six weeks
    versions = ["0", "1", *(str(base - i) for i in range(count))]
    combos = [(c, v) for v in versions for c in CHANNELS]
    return [table_name(kind, c, v, day.strftime("%Y%m%d")) for c, v in combos[:count]]


def _dimensions(rnd: random.Random, i: int, old: bool) -> str | None:
    if i % 97 == 41:
        return None
    metric, _ = _METRICS[i % len(_METRICS)]
    os_name, versions = _OSES[(i // len(_METRICS)) % len(_OSES)]
    label = _LABELS[rnd.randrange(len(_LABELS))] if metric in _KEYED else ""
    child: object = ("false", "true", "gpu")[(i // 30) % 3]
    dims: dict[str, object] = {
        "os": os_name,
        "child": child,
        "label": label,
        "metric": metric,
        "osVersion": versions[(i // 7) % len(versions)],
        "application": _APPS[(i // 11) % 2],
        "architecture": _ARCH[(i // 13) % 3],
    }
    if old or i % 7 == 3:
        dims["child"] = child == "true"  # Bug 1339139: old rows stored booleans
    if old and i % 5 == 0:
        del dims["label"]
        del dims["architecture"]
    return json.dumps(dims, ensure_ascii=False)


def _histogram(rnd: random.Random, i: int) -> list[int]:
    _, buckets = _METRICS[i % len(_METRICS)]
    # real histograms are mostly empty buckets
    counts = [0 if rnd.random() < 0.6 else rnd.randrange(1, 5000) for _ in range(buckets)]
    total = sum(counts)
    if i % 3 == 0:
        value = 2**31 + rnd.randrange(1, 2**40)  # past 32 bits, as sums of real days are
    elif i % 211 == 5:
        value = 2**63 - 1 - rnd.randrange(0, 1000)  # near the bigint limit
    else:
        value = rnd.randrange(0, 2**31)
    return [*counts, value, total]


def _line(rnd: random.Random, i: int, old: bool) -> str:
    dims = _dimensions(rnd, i, old)
    doc = "\\N" if dims is None else escape(dims)
    return doc + "\t{" + ",".join(map(str, _histogram(rnd, i))) + "}\n"


def rows(table: str, count: int, day: date) -> Iterator[bytes]:
    """The COPY text lines of a table, in pieces of `_BATCH` rows (a pure function of its name
    and the row count). Rows are drawn from a pool of `_POOL` payloads per table, so that
    millions of rows cost little more than their bytes; the pool holds every edge case."""
    rnd = random.Random(zlib.crc32(table.encode()))
    old = day < OLD_ROWS_BEFORE
    pool = [_line(rnd, i, old) for i in range(min(count, _POOL))]
    for start in range(0, count, _BATCH):
        yield "".join(pool[i % _POOL] for i in range(start, min(count, start + _BATCH))).encode()


def generate(
    source: SourceReader,
    *,
    start: date,
    days: int,
    tables_per_day: int,
    rows_per_table: int,
    kinds: tuple[str, ...],
) -> GenerateReport:
    """Write the tables of `days` days from `start` into the source's schema."""
    report = GenerateReport()
    for offset in range(days):
        day = start + timedelta(days=offset)
        for kind in kinds:
            declared = spec(kind)
            for table in day_tables(kind, day, tables_per_day):
                source.create_table(declared, table, rows(table, rows_per_table, day))
                report.tables.append(table)
                report.rows += rows_per_table
    return report
