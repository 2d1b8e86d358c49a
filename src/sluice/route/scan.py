"""Scanning Incoming: one table's prefixes listed in key order from where the last scan
stopped, every object version not seen before recorded as a load.

Identity is the object version (key + etag, else size + modified time), never a watermark:
a late file with an older timestamp, or two in one second, are loaded. A scan records at most
`listing_cap` new loads and keeps its place (``StartAfter``); once a listing reaches the end
of the table's prefixes the next scan starts over, so nothing is starved.

An ODS table's snapshot is the configured snapshot file, dated by its ``.dfm``
``startWriteTimestamp`` (the object's modified time when there is no ``.dfm`` or it has no
date). A newer snapshot supersedes the older snapshot's loads still waiting. Zero-byte
objects, and ODS files of a table that has no snapshot yet, go to Error with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sluice.errors import TerminalError
from sluice.formats.dfm import MAX_DFM_BYTES, dfm_key, parse_dfm
from sluice.ledger.records import Discovered
from sluice.ledger.repository import Ledger
from sluice.recipes.cubic.tables import stamp
from sluice.route.moves import Place
from sluice.route.options import KIND, Layout
from sluice.route.repository import RouteLedger
from sluice.route.tables import RouteTable
from sluice.store import LIST_PAGE, ObjectInfo

log = logging.getLogger(__name__)

#: What becomes a load, per table kind.
DATA_SUFFIXES = {
    "ods": (".csv.gz",),
    "dmap": (".csv.gz",),
    "stream": (".json", ".jsonl", ".jsonl.gz"),
}


@dataclass
class TableScan:
    """What one scan of a table found."""

    feed: str
    matched: int = 0
    new: int = 0
    ignored: int = 0
    errored: int = 0
    superseded: int = 0
    listed: int = 0
    wrapped: bool = False
    new_ids: list[int] = field(default_factory=list)


def read_dfm_start(incoming: Place, key: str) -> datetime | None:
    """The ``startWriteTimestamp`` of the ``.dfm`` beside `key`, if it has one."""
    full = incoming.full(dfm_key(key))
    info = incoming.store.find(full)
    if info is None or info.size > MAX_DFM_BYTES:
        return None
    body = b"".join(incoming.store.read(full))
    try:
        return parse_dfm(body, obj=incoming.store.uri(full)).start_write
    except TerminalError:
        return None  # the load itself fails on its .dfm at ingest, with the reason


def _listing(
    incoming: Place, prefixes: Sequence[str], cursor: str | None, room: int
) -> tuple[list[ObjectInfo], bool]:
    """Up to `room` objects of `prefixes` after `cursor`, in key order (keys relative to
    Incoming); whether the listing reached the end."""
    found: list[ObjectInfo] = []
    cut = len(incoming.full(""))
    for prefix in prefixes:
        if len(found) >= room:
            return found, False
        if cursor and not cursor.startswith(prefix) and cursor > prefix:
            continue  # every key of this prefix sorts before the cursor
        after = cursor if cursor and cursor.startswith(prefix) else None
        limit = room - len(found)
        page = incoming.store.list_page(
            incoming.full(prefix),
            start_after=incoming.full(after) if after else None,
            limit=limit,
        )
        found += [ObjectInfo(i.key[cut:], i.size, i.etag, i.modified) for i in page]
        if len(page) >= limit:
            return found, False
    return found, True


def scan_table(
    ledger: Ledger,
    table: RouteTable,
    incoming: Place,
    layout: Layout,
    *,
    cap: int,
    batch_loads: int,
    batch_bytes: int,
) -> TableScan:
    """List `table`'s prefixes and record its new loads (in one transaction)."""
    decl = table.declaration
    route = RouteLedger.beside(ledger)
    result = TableScan(table.name)
    suffixes = DATA_SUFFIXES[decl.kind]
    store_url = incoming.store.uri(incoming.full("")).rstrip("/")
    cursor = route.cursor(table.feed_id)
    fresh: list[ObjectInfo] = []
    last: str | None = None
    wrapped = False
    # Known versions are skipped without counting against the cap: a pass of a table whose
    # files all wait records every new one, however many old ones come first.
    while len(fresh) < cap:
        objects, wrapped = _listing(incoming, layout.prefixes(decl), cursor, LIST_PAGE)
        result.listed += len(objects)
        data = [o for o in objects if o.key.endswith(suffixes)]
        result.ignored += sum(
            1 for o in objects if not o.key.endswith(suffixes) and not o.key.endswith(".dfm")
        )
        known = route.known_versions(KIND, table.feed_id, store_url, [o.key for o in data])
        for obj in data:
            if len(fresh) >= cap:
                wrapped = False
                break
            last = obj.key
            result.matched += 1
            if (obj.key, obj.version) not in known:
                fresh.append(obj)
        else:
            last = objects[-1].key if objects else last
        if wrapped or not objects:
            break
        cursor = last
    result.wrapped = wrapped
    with route.atomic():
        route.lock_scan(table.feed_id)
        if fresh:  # another scan may have recorded some while this one listed
            known = route.known_versions(KIND, table.feed_id, store_url, [o.key for o in fresh])
            fresh = [o for o in fresh if (o.key, o.version) not in known]
        route.set_cursor(table.feed_id, None if wrapped else last)
        _record(
            ledger,
            route,
            table,
            incoming,
            layout,
            fresh,
            store_url,
            result,
            batch_loads,
            batch_bytes,
        )
    log.info(
        "%s: %d listed, %d new, %d to Error, %d superseded%s",
        table.name,
        result.listed,
        result.new,
        result.errored,
        result.superseded,
        "" if wrapped else " (more to list)",
    )
    return result


def _record(
    ledger: Ledger,
    route: RouteLedger,
    table: RouteTable,
    incoming: Place,
    layout: Layout,
    fresh: list[ObjectInfo],
    store_url: str,
    result: TableScan,
    batch_loads: int,
    batch_bytes: int,
) -> None:
    if not fresh:
        return
    decl = table.declaration
    ods = decl.kind == "ods"
    snapshot = route.snapshot(table.feed_id) if ods else None
    snapshot_obj = None
    if ods:
        for obj in fresh:
            if obj.key == decl.prefix + decl.snapshot_key and obj.size > 0:
                snapshot_obj = obj
    new_snapshot = None
    if snapshot_obj is not None:
        dated = read_dfm_start(incoming, snapshot_obj.key) or snapshot_obj.modified
        if dated is not None:
            new_snapshot = dated.replace(microsecond=0) if dated is snapshot_obj.modified else dated
    objects = [Discovered(o.key, o.version, o.etag, o.size, o.modified) for o in fresh]
    new_ids = ledger.discover(KIND, table.feed_id, store_url, objects)
    ids = _ids_by_key(ledger, route, table.feed_id, store_url, fresh, new_ids)
    if new_snapshot is not None and snapshot_obj is not None:
        if snapshot is None or new_snapshot != snapshot:
            result.superseded += len(
                route.supersede_snapshot(table.feed_id, new_snapshot, stamp(new_snapshot))
            )
        snapshot = new_snapshot
        route.set_snapshot(table.feed_id, new_snapshot, ids[snapshot_obj.key])
    batch, in_batch, batch_size = route.next_batch(), 0, 0
    for obj in fresh:
        unit_id = ids.get(obj.key)
        if unit_id is None:
            continue
        if in_batch and (in_batch >= batch_loads or batch_size + obj.size > batch_bytes):
            batch, in_batch, batch_size = route.next_batch(), 0, 0
        in_batch, batch_size = in_batch + 1, batch_size + obj.size
        route.record_load(
            unit_id, table.feed_id, snapshot if ods else None, layout.is_change(obj.key), batch
        )
        result.new += 1
        result.new_ids.append(unit_id)
        reason = None
        if obj.size == 0:
            reason = "the object is empty (zero bytes)"
        elif ods and snapshot is None:
            reason = (
                f"arrived before its table has a snapshot ({decl.prefix}{decl.snapshot_key} "
                "not seen yet)"
            )
        if reason is not None and route.to_error(unit_id, reason):
            result.errored += 1
    route.batched(result.new_ids)  # those sent to Error are no longer in `ready`


def _ids_by_key(
    ledger: Ledger,
    route: RouteLedger,
    feed_id: int,
    store_url: str,
    fresh: list[ObjectInfo],
    new_ids: list[int],
) -> dict[str, int]:
    """The unit id of each fresh object version."""
    wanted = {(o.key, o.version) for o in fresh}
    return {
        key: unit_id
        for unit_id, key, version in route.units_of(KIND, feed_id, store_url, new_ids)
        if (key, version) in wanted
    }
