"""A day's tables fetched from the source as Arrow record batches, two tables at once.

The source sends each table through ADBC's PostgreSQL driver (a binary ``COPY`` decoded to
Arrow in C): the JSON keys already taken out on the server with ``->>`` (cheap on jsonb), the
integer array whole as ``list<int64>`` (its split into buckets and tail is vectorised on the
client, `sluice.export.arrow.from_lists`). Two connections read two tables at once, so one
table's server-side COPY overlaps the decoding and conversion of another; both import the
snapshot of the connection that listed the day's tables, so the whole day reads one state of
the source. Each table's batches come through a small bounded queue, in table order: memory
holds a few batches whatever the size of the tables.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]
import pyarrow as pa

from sluice.errors import DatabaseUnavailable, SluiceError, TerminalError
from sluice.export import statements
from sluice.export.spec import ExportSpec

#: Tables read at once (the machine's two cores: one decodes while the server sends another).
WORKERS = 2
#: Batches of one table waiting for the writer.
DEPTH = 2
#: How long a blocked producer waits before looking whether the day was abandoned.
POLL_SECONDS = 0.2

_DONE = object()


def classify_adbc(exc: adbc_driver_manager.Error, doing: str) -> SluiceError:
    """A sluice error for an ADBC driver error (a lost connection is worth a retry)."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, adbc_driver_manager.OperationalError) or state.startswith(("08", "57")):
        return DatabaseUnavailable(f"{doing}: {text}; will retry")
    return TerminalError(f"{doing}: {text} (SQLSTATE {state or 'none'})")


def classify_stream(exc: BaseException, doing: str) -> SluiceError:
    """A sluice error for a failure inside a result stream (the driver reports it through
    Arrow, without a SQLSTATE): an error the server raised is the data's, for good; anything
    else (a lost connection) is worth a retry."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "ERROR:" in text:
        return TerminalError(f"{doing}: {text}")
    return DatabaseUnavailable(f"{doing}: {text}; will retry")


class _Table:
    """One table's batches on their way from a producer thread to the writer."""

    def __init__(self) -> None:
        self.items: queue.Queue[object] = queue.Queue(maxsize=DEPTH)


class ArrowFetcher:
    """Reads tables of one schema with `WORKERS` ADBC connections in one exported snapshot."""

    def __init__(self, url: str, schema: str, snapshot: str | None) -> None:
        self.url = url
        self.schema = schema
        self.snapshot = snapshot

    def _connect(self) -> Any:
        try:
            conn = adbc.connect(self.url)
            with conn.cursor() as cur:
                cur.execute(statements.snapshot_isolation())
                if self.snapshot is not None:
                    cur.execute(statements.import_snapshot(self.snapshot))
            return conn
        except adbc_driver_manager.Error as exc:
            raise classify_adbc(exc, "connecting to the export source") from exc

    def tables(
        self,
        spec: ExportSpec,
        tables: Sequence[str],
        *,
        as_string: bool,
        convert: Callable[[pa.RecordBatch], Any],
    ) -> Iterator[tuple[str, Iterator[Any]]]:
        """Each of `tables` in order with its batches passed through `convert` (run in the
        reading thread, so conversion runs two at a time too)."""
        slots = [_Table() for _ in tables]
        stop = threading.Event()
        lock = threading.Lock()
        cursor = iter(range(len(tables)))

        def put(slot: _Table, item: object) -> bool:
            while not stop.is_set():
                try:
                    slot.items.put(item, timeout=POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            conn = None
            try:
                conn = self._connect()
                with conn.cursor() as cur:
                    while not stop.is_set():
                        with lock:
                            index = next(cursor, None)
                        if index is None:
                            return
                        slot, table = slots[index], tables[index]
                        try:
                            cur.execute(
                                statements.export_select(spec, self.schema, table, as_string)
                            )
                            for batch in cur.fetch_record_batch():
                                if batch.num_rows and not put(slot, convert(batch)):
                                    return
                        except adbc_driver_manager.Error as exc:
                            put(slot, classify_adbc(exc, f"copying {table} from the source"))
                            return
                        except (pa.ArrowException, OSError) as exc:
                            put(slot, classify_stream(exc, f"copying {table} from the source"))
                            return
                        except BaseException as exc:  # handed to the writer, which raises it
                            put(slot, exc)
                            return
                        if not put(slot, _DONE):
                            return
            except BaseException as exc:
                # a failed connection: the first table not yet taken reports it
                with lock:
                    index = next(cursor, None)
                if index is not None:
                    put(slots[index], exc)
            finally:
                if conn is not None:
                    # a connection already broken has nothing to release
                    with contextlib.suppress(adbc_driver_manager.Error):
                        conn.close()

        threads = [
            threading.Thread(target=work, name=f"export-fetch-{i}", daemon=True)
            for i in range(min(WORKERS, len(tables)))
        ]
        for thread in threads:
            thread.start()
        try:
            for slot, table in zip(slots, tables, strict=True):
                yield table, self._drain(slot, threads)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    @staticmethod
    def _drain(slot: _Table, threads: list[threading.Thread]) -> Iterator[Any]:
        while True:
            try:
                item = slot.items.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and slot.items.empty():
                    raise TerminalError(
                        "the export readers stopped before a table was read"
                    ) from None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
