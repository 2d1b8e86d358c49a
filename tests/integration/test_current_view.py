"""Current views (``ods.edw_sample``): the downstream CDC merge built in, checked value by value.

The sample files are those of ../shared/reference/data/mbta-sample-data/cubic/ods_qlik/ (the
seed's sample data set), byte for byte after decompression: LOAD1 and LOAD2 of EDW.SAMPLE, then
the change files 20211201-112233444 and 20211201-122433444 of EDW.SAMPLE__ct. The other files
are built here to reach each rule of the merge.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from sluice.api import Engine
from sluice.current import ApplyResult, ViewTarget, apply_file, repository, view_lags, view_target
from sluice.db import Connection
from sluice.errors import BadInputError
from sluice.formats.dfm import Dfm, parse_dfm
from sluice.ledger.repository import Ledger
from sluice.service.app import create_app
from sluice.status import read_status
from tests.fixtures.fix_db import fresh_database

FIRE = "\U0001f525"
SNAPSHOT = datetime(2022, 1, 1, 20, 49, 50, tzinfo=UTC)
NEXT_SNAPSHOT = datetime(2022, 6, 8, 23, 46, 23, tzinfo=UTC)
LOAD_SEQ = "2022010120495000" + "0" * 19
TARGET = ViewTarget("ods", "edw_sample")
SAMPLE_COLUMNS = [
    ("SAMPLE_ID", "INT4", 10, 1),
    ("SAMPLE_NAME", "STRING", 100, 0),
    ("EDW_INSERTED_DTM", "DATETIME", 0, 0),
    ("EDW_UPDATED_DTM", "DATETIME", 0, 0),
]
HEADER_COLUMNS = [
    ("header__change_seq", "STRING", 35, 0),
    ("header__change_oper", "STRING", 1, 0),
    ("header__timestamp", "DATETIME", 0, 0),
]

LOAD1 = (
    b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
    b'1,"Sample 1 \xf0\x9f\x94\xa5",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444\n'
    b'2,"Sample 2",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444\n'
)
LOAD2 = (
    b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
    b'3,"Sample 3",2021-12-01 11:21:30.4444444,2021-12-01 11:21:30.4444444'
)
CT_HEADER = (
    b"header__change_seq,header__change_oper,header__timestamp,"
    b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
)
CT1 = CT_HEADER + (
    b"20210915031230320000000000000000041,I,2021-10-08 13:12:31.320000,4,"
    b'"Sample 4 '
    + "🔥🔥🔥🔥".encode()
    + b'",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444\n'
    b"20210915031231320000000000000000041,U,2021-10-08 13:12:31.320000,2,"
    b'"Sample 2 ' + "🔥🔥".encode() + b'",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444'
)
CT2 = CT_HEADER + (
    b"20210915031230320000000000000000041,U,2021-10-08 14:12:31.320000,4,"
    b'"Sample 4 '
    + "🔥🔥🔥🔥".encode()
    + b'",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444\n'
    b"20210915031231320000000000000000041,I,2021-10-08 15:12:31.320000,5,"
    b'"Sample 5 '
    + "🔥🔥🔥🔥🔥".encode()
    + b'",2021-12-01 11:20:30.4444444,2021-12-01 11:20:31.4444444\n'
)
INSERTED = datetime(2021, 12, 1, 11, 20, 30, 444444)
UPDATED = datetime(2021, 12, 1, 11, 20, 31, 444444)
SELECT = (
    "SELECT sample_id, sample_name, edw_inserted_dtm, edw_updated_dtm, header__change_seq,"
    " header__change_oper, header__timestamp FROM ods.edw_sample ORDER BY sample_id"
)


def dfm_of(columns: Sequence[tuple[str, str, int, int]], *, table: str = "SAMPLE") -> Dfm:
    """A `.dfm` as Qlik writes one (the sample's layout), for these columns."""
    doc = {
        "dfmVersion": "1.1",
        "fileInfo": {"name": "x.csv", "extension": "gz", "startWriteTimestamp": ""},
        "formatInfo": {
            "format": "delimited",
            "options": {"fieldDelimiter": ",", "nullValue": "", "quoteChar": '"'},
        },
        "dataInfo": {
            "sourceSchema": "EDW",
            "sourceTable": table,
            "columns": [
                {
                    "ordinal": i,
                    "name": name,
                    "type": kind,
                    "length": length,
                    "precision": 0,
                    "scale": 0,
                    "primaryKeyPos": key,
                }
                for i, (name, kind, length, key) in enumerate(columns, start=1)
            ],
        },
    }
    return parse_dfm(json.dumps(doc).encode(), obj="x.dfm")


LOAD_DFM = dfm_of(SAMPLE_COLUMNS)
CT_DFM = dfm_of(HEADER_COLUMNS + SAMPLE_COLUMNS, table="SAMPLE")


@pytest.fixture(params=["in-place", "rewrite"])
def both_ways(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test run twice: changes applied in place, and by rewriting the view (the way of a
    change file that touches a large share of it)."""
    rewrite = request.param == "rewrite"
    monkeypatch.setattr(repository, "REWRITE_MIN_ROWS", 0 if rewrite else 10**12)
    monkeypatch.setattr(repository, "REWRITE_SHARE", 0.0)
    return str(request.param)


@pytest.fixture
def conn(views_url: str) -> Iterator[Connection]:
    """A connection to the module's database, left as it was found: every view, its ledger row
    and the tests' own tables are dropped afterwards (a database per test costs more than the
    tests)."""
    with psycopg.connect(views_url) as opened:
        yield opened
    with psycopg.connect(views_url, autocommit=True) as cleanup:
        cleanup.execute("DROP SCHEMA IF EXISTS ods CASCADE")
        cleanup.execute("DROP TABLE IF EXISTS public.ledger_note")
        cleanup.execute("DELETE FROM sluice.current_views")


@pytest.fixture(scope="module")
def views_url(server_url: str, template_db: str) -> Iterator[str]:
    with fresh_database(server_url, "sluice_cv", template_db) as url:
        yield url


def apply(
    conn: Connection,
    body: bytes,
    *,
    change: bool,
    obj: str = "f.csv.gz",
    dfm: Dfm | None = None,
    snapshot: datetime = SNAPSHOT,
    target: ViewTarget = TARGET,
) -> ApplyResult:
    """One file applied in its own transaction, as the ingest step does."""
    with conn.transaction():
        return apply_file(
            conn,
            target,
            dfm or (CT_DFM if change else LOAD_DFM),
            io.BytesIO(body),
            obj=obj,
            snapshot=snapshot,
            change=change,
        )


def rows(conn: Connection, query: str = SELECT) -> list[tuple[Any, ...]]:
    with conn.transaction():
        return conn.execute(query).fetchall()


def ct(*lines: str) -> bytes:
    return CT_HEADER + "".join(f"{line}\n" for line in lines).encode()


def seq(n: int) -> str:
    return f"2021091503123032{n:019d}"


def load_sample(conn: Connection) -> None:
    apply(conn, LOAD1, change=False, obj="cubic/ods_qlik/EDW.SAMPLE/LOAD1.csv.gz")
    apply(conn, LOAD2, change=False, obj="cubic/ods_qlik/EDW.SAMPLE/LOAD2.csv.gz")


def test_view_target_names_the_view_as_downstream_does() -> None:
    assert view_target("EDW", "SAMPLE") == TARGET


def test_the_sample_data_through_the_view_value_by_value(conn: Connection, both_ways: str) -> None:
    first = apply(conn, LOAD1, change=False, obj="cubic/ods_qlik/EDW.SAMPLE/LOAD1.csv.gz")
    second = apply(conn, LOAD2, change=False, obj="cubic/ods_qlik/EDW.SAMPLE/LOAD2.csv.gz")
    assert first == ApplyResult(2, 0, 0, 0, None, rebuilt=True)
    assert second == ApplyResult(1, 0, 0, 0, None, rebuilt=False)
    snapshot = SNAPSHOT.replace(tzinfo=None)
    assert rows(conn) == [
        (1, f"Sample 1 {FIRE}", INSERTED, UPDATED, LOAD_SEQ, "L", snapshot),
        (2, "Sample 2", INSERTED, UPDATED, LOAD_SEQ, "L", snapshot),
        (3, "Sample 3", INSERTED + timedelta(minutes=1), INSERTED + timedelta(minutes=1),
         LOAD_SEQ, "L", snapshot),
    ]  # fmt: skip

    one = apply(
        conn, CT1, change=True, obj="cubic/ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz"
    )
    two = apply(
        conn, CT2, change=True, obj="cubic/ods_qlik/EDW.SAMPLE__ct/20211201-122433444.csv.gz"
    )

    assert one == ApplyResult(1, 1, 0, 0, datetime(2021, 10, 8, 13, 12, 31, 320000, tzinfo=UTC))
    assert two == ApplyResult(1, 1, 0, 0, datetime(2021, 10, 8, 15, 12, 31, 320000, tzinfo=UTC))
    assert rows(conn) == [
        (1, f"Sample 1 {FIRE}", INSERTED, UPDATED, LOAD_SEQ, "L", snapshot),
        (2, f"Sample 2 {FIRE * 2}", INSERTED, UPDATED, "20210915031231320000000000000000041",
         "U", datetime(2021, 10, 8, 13, 12, 31, 320000)),
        (3, "Sample 3", INSERTED + timedelta(minutes=1), INSERTED + timedelta(minutes=1),
         LOAD_SEQ, "L", snapshot),
        (4, f"Sample 4 {FIRE * 4}", INSERTED, UPDATED, "20210915031230320000000000000000041",
         "U", datetime(2021, 10, 8, 14, 12, 31, 320000)),
        (5, f"Sample 5 {FIRE * 5}", INSERTED, UPDATED, "20210915031231320000000000000000041",
         "I", datetime(2021, 10, 8, 15, 12, 31, 320000)),
    ]  # fmt: skip
    types = rows(
        conn,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'ods' AND table_name = 'edw_sample' ORDER BY ordinal_position",
    )
    assert types == [
        ("sample_id", "bigint"),
        ("sample_name", "text"),
        ("edw_inserted_dtm", "timestamp without time zone"),
        ("edw_updated_dtm", "timestamp without time zone"),
        ("header__change_seq", "text"),
        ("header__change_oper", "text"),
        ("header__timestamp", "timestamp without time zone"),
    ]
    [lag] = view_lags(conn)
    assert (lag.target, lag.snapshot, lag.rows) == (TARGET, SNAPSHOT, 5)
    assert (lag.load_files, lag.change_files) == (2, 2)
    assert lag.newest_change == datetime(2021, 10, 8, 15, 12, 31, 320000, tzinfo=UTC)
    assert lag.lag is not None
    expected = datetime.now(UTC) - lag.newest_change
    assert abs((lag.lag - expected).total_seconds()) < 60


def test_a_change_to_null_is_applied(conn: Connection, both_ways: str) -> None:
    load_sample(conn)
    result = apply(conn, ct(f"{seq(1)},U,2021-10-08 13:00:00,2,,,2021-12-02 00:00:00"), change=True)
    assert (result.updated, result.inserted, result.deleted) == (1, 0, 0)
    query = "SELECT sample_name, edw_inserted_dtm, edw_updated_dtm FROM ods.edw_sample"
    assert rows(conn, f"{query} WHERE sample_id = 2") == [(None, None, datetime(2021, 12, 2))]


def test_the_final_operation_per_key_wins_in_change_sequence_order(
    conn: Connection, both_ways: str
) -> None:
    load_sample(conn)
    body = ct(
        f"{seq(5)},U,2021-10-08 13:00:05,2,fifth,,",
        f"{seq(1)},U,2021-10-08 13:00:01,2,first,,",
        f"{seq(4)},D,2021-10-08 13:00:04,2,,,",
        f"{seq(2)},D,2021-10-08 13:00:02,3,,,",
        f"{seq(3)},I,2021-10-08 13:00:03,3,back,,",
        f"{seq(7)},I,2021-10-08 13:00:07,6,new,,",
        f"{seq(8)},D,2021-10-08 13:00:08,6,,,",
    )
    result = apply(conn, body, change=True)
    # key 2: U wins (seq 5); key 3: I after D; key 6: inserted then deleted in the file
    assert result == ApplyResult(0, 2, 0, 5, datetime(2021, 10, 8, 13, 0, 8, tzinfo=UTC))
    query = "SELECT sample_id, sample_name, header__change_oper FROM ods.edw_sample ORDER BY 1"
    assert rows(conn, query) == [(1, f"Sample 1 {FIRE}", "L"), (2, "fifth", "U"), (3, "back", "I")]


def test_a_delete_then_an_insert_of_one_key_in_one_file_leaves_one_row(
    conn: Connection, both_ways: str
) -> None:
    load_sample(conn)
    body = ct(f"{seq(1)},D,2021-10-08 13:00:01,1,,,", f"{seq(2)},I,2021-10-08 13:00:02,1,again,,")
    result = apply(conn, body, change=True)
    assert (result.inserted, result.updated, result.deleted, result.ignored) == (0, 1, 0, 1)
    assert rows(conn, "SELECT sample_id, sample_name FROM ods.edw_sample WHERE sample_id = 1") == [
        (1, "again")
    ]
    gone = apply(conn, ct(f"{seq(3)},D,2021-10-08 13:00:03,1,,,"), change=True)
    assert (gone.deleted, gone.ignored) == (1, 0)
    assert rows(conn, "SELECT sample_id FROM ods.edw_sample ORDER BY 1") == [(2,), (3,)]
    again = apply(conn, ct(f"{seq(4)},D,2021-10-08 13:00:04,1,,,"), change=True)
    assert (again.deleted, again.ignored) == (0, 1)  # a delete of a key the view lacks


def test_before_images_are_ignored(conn: Connection, both_ways: str) -> None:
    load_sample(conn)
    body = ct(
        f"{seq(2)},B,2021-10-08 13:00:01,2,before,,",
        f"{seq(2)},U,2021-10-08 13:00:01,2,after,,",
        f"{seq(3)},B,2021-10-08 13:00:09,3,not a change,2021-01-01 00:00:00,",
    )
    result = apply(conn, body, change=True)
    assert result == ApplyResult(0, 1, 0, 2, datetime(2021, 10, 8, 13, 0, 1, tzinfo=UTC))
    assert rows(conn, "SELECT sample_id, sample_name FROM ods.edw_sample ORDER BY 1") == [
        (1, f"Sample 1 {FIRE}"),
        (2, "after"),
        (3, "Sample 3"),
    ]


COMPOSITE = [("A", "INT4", 10, 1), ("B", "STRING", 10, 2), ("V", "NUMERIC", 0, 0)]
COMPOSITE_TARGET = ViewTarget("ods", "edw_pair")


def test_a_composite_key_with_a_null_part_is_matched_null_safely(conn: Connection) -> None:
    load_dfm = dfm_of(COMPOSITE, table="PAIR")
    ct_dfm = dfm_of(HEADER_COLUMNS + COMPOSITE, table="PAIR")
    header = "header__change_seq,header__change_oper,header__timestamp,A,B,V\n"
    apply(conn, b"A,B,V\n1,,10.5\n1,x,11\n2,x,12\n", change=False, dfm=load_dfm,
          target=COMPOSITE_TARGET)  # fmt: skip
    body = header + (
        f"{seq(1)},U,2021-10-08 13:00:01,1,,20.25\n"
        f"{seq(2)},D,2021-10-08 13:00:02,1,x,\n"
        f"{seq(3)},I,2021-10-08 13:00:03,2,,30\n"
        f"{seq(4)},I,2021-10-08 13:00:04,,,40\n"
    )
    result = apply(conn, body.encode(), change=True, dfm=ct_dfm, target=COMPOSITE_TARGET)
    assert (result.inserted, result.updated, result.deleted, result.ignored) == (2, 1, 1, 0)
    select = "SELECT a, b, v::text FROM ods.edw_pair ORDER BY a NULLS LAST, b NULLS FIRST"
    assert rows(conn, select) == [(1, None, "20.25"), (2, None, "30"), (2, "x", "12"),
                                  (None, None, "40")]  # fmt: skip
    again = header + f"{seq(5)},U,2021-10-08 13:00:05,,,41\n{seq(6)},D,2021-10-08 13:00:06,2,,\n"
    result = apply(conn, again.encode(), change=True, dfm=ct_dfm, target=COMPOSITE_TARGET)
    assert (result.inserted, result.updated, result.deleted) == (0, 1, 1)
    assert rows(conn, select) == [(1, None, "20.25"), (2, "x", "12"), (None, None, "41")]


def test_a_new_snapshot_rebuilds_the_view(conn: Connection) -> None:
    load_sample(conn)
    apply(conn, CT1, change=True)
    result = apply(conn, LOAD2, change=False, snapshot=NEXT_SNAPSHOT)
    assert result == ApplyResult(1, 0, 0, 0, None, rebuilt=True)
    assert rows(conn, "SELECT sample_id, header__timestamp FROM ods.edw_sample") == [
        (3, NEXT_SNAPSHOT.replace(tzinfo=None))
    ]
    [lag] = view_lags(conn)
    assert (lag.snapshot, lag.rows, lag.newest_change, lag.lag) == (NEXT_SNAPSHOT, 1, None, None)
    assert (lag.load_files, lag.change_files) == (1, 0)

    with pytest.raises(BadInputError) as old_change:
        apply(conn, CT2, change=True, obj="EDW.SAMPLE__ct/20211201-122433444.csv.gz")
    assert str(old_change.value) == (
        "EDW.SAMPLE__ct/20211201-122433444.csv.gz: the change file is of snapshot "
        "20220101T204950Z, but the view ods.edw_sample holds snapshot 20220608T234623Z"
    )
    with pytest.raises(BadInputError) as old_load:
        apply(conn, LOAD1, change=False, obj="EDW.SAMPLE/LOAD1.csv.gz")
    assert str(old_load.value) == (
        "EDW.SAMPLE/LOAD1.csv.gz: the LOAD file is of snapshot 20220101T204950Z, older than "
        "the snapshot 20220608T234623Z the view ods.edw_sample holds"
    )
    assert rows(conn, "SELECT sample_id FROM ods.edw_sample") == [(3,)]


def test_a_change_file_before_any_snapshot_is_refused(conn: Connection) -> None:
    with pytest.raises(BadInputError) as caught:
        apply(conn, CT1, change=True, obj="ct.csv.gz")
    assert str(caught.value) == (
        "ct.csv.gz: a change file of snapshot 20220101T204950Z, but the view ods.edw_sample "
        "holds no snapshot yet (its LOAD files come first)"
    )


@pytest.mark.parametrize(
    ("body", "change", "message"),
    [
        (
            b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n1,a,,\nabc,b,,\n",
            False,
            'bad.csv.gz, line 3, column SAMPLE_ID: invalid input syntax for type bigint: "abc"',
        ),
        (
            ct(
                f"{seq(1)},U,2021-10-08 13:00:01,2,x,,", f"{seq(2)},I,2021-10-08 13:00:02,9,y,,soon"
            ),
            True,
            "bad.csv.gz, line 3, column EDW_UPDATED_DTM: invalid input syntax for type "
            'timestamp: "soon"',
        ),
        (
            ct(f"{seq(1)},U,2021-10-08 13:00:01,2,x,,", f"{seq(2)},X,2021-10-08 13:00:02,9,y,,"),
            True,
            "bad.csv.gz, line 3, column header__change_oper: header__change_oper is 'X', not "
            "one of I, U, D, B",
        ),
        (
            b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM\n1,a,\n",
            False,
            "bad.csv.gz, line 1: the header does not match the .dfm columns (missing "
            "edw_updated_dtm)",
        ),
        (
            b"SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n1,a,,\n2,b,,,extra\n",
            False,
            "bad.csv.gz, line 3: extra data after last expected column",
        ),
        (b"", False, "bad.csv.gz, line 1: the file is empty (no header row)"),
    ],
    ids=["load-cast", "change-cast", "operation", "header", "extra-field", "empty"],
)
def test_bad_input_is_refused_with_its_place_and_leaves_the_view(
    conn: Connection, body: bytes, change: bool, message: str
) -> None:
    load_sample(conn)
    before = rows(conn)
    with pytest.raises(BadInputError) as caught:
        apply(conn, body, change=change, obj="bad.csv.gz")
    assert str(caught.value) == message
    assert rows(conn) == before
    [lag] = view_lags(conn)
    assert (lag.rows, lag.load_files, lag.change_files) == (3, 2, 0)


def test_a_cast_failure_deep_in_a_large_file_is_located(conn: Connection) -> None:
    load_sample(conn)
    lines = [f"{seq(i)},I,2021-10-08 13:00:00,{i},n{i},," for i in range(10, 5010)]
    lines[3210] = f"{seq(9)},U,2021-10-08 13:00:00,77,x,2021-13-45 00:00:00,"
    with pytest.raises(BadInputError) as caught:
        apply(conn, ct(*lines), change=True, obj="big.csv.gz")
    assert str(caught.value) == (
        "big.csv.gz, line 3212, column EDW_INSERTED_DTM: date/time field value out of range: "
        '"2021-13-45 00:00:00"'
    )


def test_a_rolled_back_caller_transaction_leaves_the_view_unchanged(
    conn: Connection, both_ways: str
) -> None:
    load_sample(conn)
    before = rows(conn)
    with pytest.raises(RuntimeError), conn.transaction():
        result = apply_file(
            conn, TARGET, CT_DFM, io.BytesIO(CT1), obj="ct", snapshot=SNAPSHOT, change=True
        )
        assert result.inserted == 1
        assert conn.execute("SELECT count(*) FROM ods.edw_sample").fetchone() == (4,)
        raise RuntimeError("the ledger transition failed")
    assert rows(conn) == before
    [lag] = view_lags(conn)
    assert (lag.rows, lag.change_files, lag.newest_change) == (3, 0, None)


def test_bad_input_leaves_the_callers_transaction_usable(conn: Connection) -> None:
    load_sample(conn)
    with conn.transaction():
        conn.execute("CREATE TABLE public.ledger_note (note text)")
        with pytest.raises(BadInputError):
            apply_file(
                conn,
                TARGET,
                CT_DFM,
                io.BytesIO(ct(f"{seq(1)},U,2021-10-08 13:00:01,zz,x,,")),
                obj="ct",
                snapshot=SNAPSHOT,
                change=True,
            )
        conn.execute("INSERT INTO public.ledger_note VALUES ('errored')")
    assert rows(conn, "SELECT note FROM public.ledger_note") == [("errored",)]
    assert len(rows(conn)) == 3


def test_two_files_in_one_transaction(conn: Connection) -> None:
    with conn.transaction():
        for body in (LOAD1, LOAD2):
            apply_file(
                conn, TARGET, LOAD_DFM, io.BytesIO(body), obj="l", snapshot=SNAPSHOT, change=False
            )
        for body in (CT1, CT2):
            apply_file(
                conn, TARGET, CT_DFM, io.BytesIO(body), obj="c", snapshot=SNAPSHOT, change=True
            )
    assert [r[0] for r in rows(conn)] == [1, 2, 3, 4, 5]


def test_an_update_sets_only_the_columns_its_file_carries(conn: Connection, both_ways: str) -> None:
    load_sample(conn)
    narrow = dfm_of(HEADER_COLUMNS + SAMPLE_COLUMNS[:2])
    body = (
        "header__change_seq,header__change_oper,header__timestamp,SAMPLE_ID,SAMPLE_NAME\n"
        f"{seq(1)},U,2021-10-08 13:00:01,1,renamed\n{seq(2)},I,2021-10-08 13:00:02,9,nine\n"
    )
    result = apply(conn, body.encode(), change=True, dfm=narrow)
    assert (result.inserted, result.updated) == (1, 1)
    assert rows(conn, "SELECT sample_id, sample_name, edw_inserted_dtm, edw_updated_dtm "
                "FROM ods.edw_sample WHERE sample_id IN (1, 9) ORDER BY 1") == [
        (1, "renamed", INSERTED, UPDATED), (9, "nine", None, None)]  # fmt: skip


def test_the_views_lag_is_on_the_status_report(conn: Connection, views_url: str) -> None:
    load_sample(conn)
    apply(conn, CT1, change=True)
    with psycopg.connect(views_url, autocommit=True) as plain:
        report = read_status(Ledger(plain))
    [view] = report.views
    assert (view.view, view.snapshot, view.rows) == ("ods.edw_sample", SNAPSHOT, 4)
    assert view.newest_change == datetime(2021, 10, 8, 13, 12, 31, 320000, tzinfo=UTC)
    assert view.lag_seconds is not None
    expected = (datetime.now(UTC) - view.newest_change).total_seconds()
    assert abs(view.lag_seconds - expected) < 60
    shown = report.as_dict()["views"]
    assert shown == [
        {
            "view": "ods.edw_sample",
            "snapshot": "2022-01-01T20:49:50+00:00",
            "newest_change": "2021-10-08T13:12:31.320000+00:00",
            "lag_seconds": view.lag_seconds,
            "rows": 4,
        }
    ]


def test_the_dashboard_and_the_api_show_the_views(engine: Engine, database_url: str) -> None:
    with psycopg.connect(database_url) as own:  # the engine's database
        load_sample(own)
        apply(own, CT2, change=True)

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://sluice") as client:
            return await client.get("/"), await client.get("/api/status")

    page, answer = anyio.run(ask)
    status = answer.json()
    assert page.status_code == 200
    assert "<h2>Current views</h2>" in page.text
    assert '<tr data-view="ods.edw_sample">' in page.text
    [view] = status["views"]
    assert (view["view"], view["rows"]) == ("ods.edw_sample", 5)  # 4 is inserted by its update
    assert view["newest_change"] == "2021-10-08T15:12:31.320000+00:00"


def test_a_view_reading_the_current_view_keeps_it_in_place(
    conn: Connection, both_ways: str
) -> None:
    load_sample(conn)
    with conn.transaction():
        conn.execute("CREATE VIEW public.names AS SELECT sample_name FROM ods.edw_sample")
    result = apply(conn, CT1, change=True)
    assert (result.inserted, result.updated) == (1, 1)
    assert rows(conn, "SELECT count(*) FROM public.names") == [(4,)]
    with conn.transaction():
        conn.execute("DROP VIEW public.names")
