"""The Cubic routing through the runtime on the sample data: Incoming → lake → Archive / Error,
with the seed's weaknesses fixed (per-version identity, superseded restarts, per-load
failures with their reason, casts that never kill a load)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sluice.api import Engine, open_engine
from sluice.config import Settings
from sluice.errors import ConfigError
from sluice.recipes.cubic import api
from sluice.recipes.cubic.options import TableDeclaration
from tests.integration.cubic_seed import (
    CT_PREFIX,
    DMAP,
    DMAP_PREFIX,
    ODS,
    ODS_PREFIX,
    by_key,
    cubic_settings,
    declarations,
    dfm_with,
    duck_rows,
    files,
    lake_rows,
    run_once,
    seed,
    write_gz,
)

SNAP = datetime(2022, 1, 1, 20, 49, 50, tzinfo=UTC)
STAMP = "20220101T204950Z"
T = datetime


def ran(report: Any) -> bool:
    """The pass went through (a load that ended in Error makes a report not `ok`)."""
    return report.reason is None and not report.feed_errors and not report.cancelled


def _at(path: Path, moment: datetime) -> None:
    os.utime(path, (moment.timestamp(), moment.timestamp()))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cubic"


@pytest.fixture
def cubic(settings: Settings, root: Path) -> Iterator[Engine]:
    with open_engine(settings=cubic_settings(settings, root)) as engine:
        yield engine


def _sample(root: Path) -> Path:
    incoming = root / "incoming"
    seed(incoming)
    _at(incoming / ODS_PREFIX / "LOAD1.csv.gz", SNAP)
    return incoming


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ods_rows(stamp: str) -> list[dict[str, Any]]:
    def row(i: int, name: str, ins: str, upd: str, ident: str) -> dict[str, Any]:
        return {
            "sample_id": i,
            "sample_name": name,
            "edw_inserted_dtm": _ts(ins),
            "edw_updated_dtm": _ts(upd),
            "snapshot": stamp,
            "identifier": ident,
        }

    return [
        row(
            1,
            "Sample 1 🔥",
            "2021-12-01 11:20:30.444444",
            "2021-12-01 11:20:31.444444",
            "LOAD1.csv.gz",
        ),
        row(
            2,
            "Sample 2",
            "2021-12-01 11:20:30.444444",
            "2021-12-01 11:20:31.444444",
            "LOAD1.csv.gz",
        ),
        row(
            3,
            "Sample 3",
            "2021-12-01 11:21:30.444444",
            "2021-12-01 11:21:30.444444",
            "LOAD2.csv.gz",
        ),
    ]


def _ct_rows(stamp: str) -> list[dict[str, Any]]:
    def row(seq: str, op: str, ts: str, i: int, name: str, ident: str) -> dict[str, Any]:
        return {
            "header__change_seq": seq,
            "header__change_oper": op,
            "header__timestamp": _ts(ts),
            "sample_id": i,
            "sample_name": name,
            "edw_inserted_dtm": _ts("2021-12-01 11:20:30.444444"),
            "edw_updated_dtm": _ts("2021-12-01 11:20:31.444444"),
            "snapshot": stamp,
            "identifier": ident,
        }

    first, second = "20211201-112233444.csv.gz", "20211201-122433444.csv.gz"
    return [
        row(
            "20210915031230320000000000000000041",
            "I",
            "2021-10-08 13:12:31.32",
            4,
            "Sample 4 🔥🔥🔥🔥",
            first,
        ),
        row(
            "20210915031231320000000000000000041",
            "U",
            "2021-10-08 13:12:31.32",
            2,
            "Sample 2 🔥🔥",
            first,
        ),
        row(
            "20210915031230320000000000000000041",
            "U",
            "2021-10-08 14:12:31.32",
            4,
            "Sample 4 🔥🔥🔥🔥",
            second,
        ),
        row(
            "20210915031231320000000000000000041",
            "I",
            "2021-10-08 15:12:31.32",
            5,
            "Sample 5 🔥🔥🔥🔥🔥",
            second,
        ),
    ]


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import json

    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def test_the_sample_data_through_every_path(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    empty = incoming / DMAP_PREFIX / "agg_sample_20220519.csv.gz"
    empty.write_bytes(b"")
    _at(empty, datetime(2022, 5, 19, 15, 0, 1, tzinfo=UTC))

    report = run_once(cubic)
    assert ran(report)

    loads = by_key(cubic)
    assert {k: v["status"] for k, v in loads.items()} == {
        f"{DMAP_PREFIX}agg_sample_20220517.csv.gz": "archived",
        f"{DMAP_PREFIX}agg_sample_20220518.csv.gz": "archived",
        f"{DMAP_PREFIX}agg_sample_20220519.csv.gz": "errored",
        f"{ODS_PREFIX}LOAD1.csv.gz": "archived",
        f"{ODS_PREFIX}LOAD2.csv.gz": "archived",
        f"{CT_PREFIX}20211201-112233444.csv.gz": "archived",
        f"{CT_PREFIX}20211201-122433444.csv.gz": "archived",
    }
    assert loads[f"{DMAP_PREFIX}agg_sample_20220519.csv.gz"]["reason"] == (
        "the object is empty (zero bytes)"
    )
    # Incoming is empty; Archive and Error hold each file once, in the seed's layouts
    assert files(incoming) == []
    assert files(root / "archive") == sorted(
        [
            f"{DMAP_PREFIX}agg_sample_20220517.csv.gz",
            f"{DMAP_PREFIX}agg_sample_20220518.csv.gz",
            f"{ODS_PREFIX}snapshot={STAMP}/LOAD1.csv.gz",
            f"{ODS_PREFIX}snapshot={STAMP}/LOAD1.dfm",
            f"{ODS_PREFIX}snapshot={STAMP}/LOAD2.csv.gz",
            f"{ODS_PREFIX}snapshot={STAMP}/LOAD2.dfm",
            f"{CT_PREFIX}snapshot={STAMP}/20211201-112233444.csv.gz",
            f"{CT_PREFIX}snapshot={STAMP}/20211201-112233444.dfm",
            f"{CT_PREFIX}snapshot={STAMP}/20211201-122433444.csv.gz",
            f"{CT_PREFIX}snapshot={STAMP}/20211201-122433444.dfm",
        ]
    )
    assert files(root / "error") == [
        f"{DMAP_PREFIX}timestamp=20220519T150001Z/agg_sample_20220519.csv.gz"
    ]
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    archived = root / "archive" / ODS_PREFIX / f"snapshot={STAMP}" / "LOAD1.csv.gz"
    assert archived.read_bytes() == (sample / "ods_qlik/EDW.SAMPLE/LOAD1.csv.gz").read_bytes()

    # the lake, read by pyiceberg and by DuckDB over the files its scan plans
    dmap = [
        {
            "sample_id": "1",
            "sample_name": "Sample 1",
            "sample_count": "5",
            "identifier": "agg_sample_20220517.csv.gz",
        },
        {
            "sample_id": "2",
            "sample_name": "Sample 2",
            "sample_count": "5",
            "identifier": "agg_sample_20220517.csv.gz",
        },
        {
            "sample_id": "3",
            "sample_name": "Sample 3",
            "sample_count": "5",
            "identifier": "agg_sample_20220518.csv.gz",
        },
        {
            "sample_id": "4",
            "sample_name": "Sample 4",
            "sample_count": "5",
            "identifier": "agg_sample_20220518.csv.gz",
        },
    ]
    expected = {
        ODS: _sorted(_ods_rows(STAMP)),
        f"{ODS}__ct": _sorted(_ct_rows(STAMP)),
        f"raw_{DMAP}": _sorted(dmap),
    }
    for table, rows in expected.items():
        assert lake_rows(cubic, table) == rows, table
        assert duck_rows(cubic, table) == rows, table
    lake = {t.name: t for t in api.lake_tables(cubic)}
    assert sorted(lake) == sorted(expected)
    assert (lake[ODS].rows, lake[ODS].partitions) == (3, 2)
    assert (lake[f"{ODS}__ct"].rows, lake[f"{ODS}__ct"].partitions) == (4, 2)
    # each load records its lake snapshot; the last one is the table's current snapshot
    ct = loads[f"{CT_PREFIX}20211201-122433444.csv.gz"]
    assert ct["lake_table"] == f"{ODS}__ct" and ct["rows_written"] == 2
    assert ct["lake_snapshot_id"] == lake[f"{ODS}__ct"].snapshot_id
    assert all(v["lake_snapshot_id"] for v in loads.values() if v["status"] == "archived")
    assert all(v["snapshot"] == SNAP for k, v in loads.items() if k.startswith("cubic/ods"))

    # a second pass finds nothing new and changes nothing
    again = run_once(cubic)
    assert again.counts.discovered == 0
    assert lake_rows(cubic, ODS) == expected[ODS]


def test_raw_tables_are_strings_with_empty_values_null(
    cubic: Engine, root: Path, settings: Settings
) -> None:
    incoming = root / "incoming"
    write_gz(
        incoming / ODS_PREFIX / "LOAD1.csv.gz",
        "SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
        '1,,"",2021-12-01 11:20:31.4444444\n',
    )
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    dfm_with(
        sample / "ods_qlik/EDW.SAMPLE/LOAD1.dfm", incoming / ODS_PREFIX / "LOAD1.dfm", start=SNAP
    )
    tables = declarations(typed=False)
    with open_engine(settings=cubic_settings(settings, root, tables)) as engine:
        assert ran(run_once(engine))
        assert lake_rows(engine, f"raw_{ODS}") == [
            {
                "sample_id": "1",
                "sample_name": None,
                "edw_inserted_dtm": None,
                "edw_updated_dtm": "2021-12-01 11:20:31.4444444",
                "snapshot": STAMP,  # dated by the .dfm's startWriteTimestamp
                "identifier": "LOAD1.csv.gz",
            }
        ]


def test_typed_values_that_do_not_cast_are_null_and_rejected(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    write_gz(
        incoming / ODS_PREFIX / "LOAD2.csv.gz",
        "SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
        "x3,Sample 3,2021-12-01 11:21:30.4444444,yesterday\n"
        "99999999999999999999,Sample 9,2021-12-01 11:21:30,2021-12-01 11:21:30\n",
    )
    assert ran(run_once(cubic))
    load = by_key(cubic)[f"{ODS_PREFIX}LOAD2.csv.gz"]
    assert (load["status"], load["rows_written"], load["rejects"]) == ("archived", 2, 3)
    rows = [r for r in lake_rows(cubic, ODS) if r["identifier"] == "LOAD2.csv.gz"]
    assert sorted((r["sample_name"], r["sample_id"], r["edw_updated_dtm"]) for r in rows) == [
        ("Sample 3", None, None),
        ("Sample 9", None, T(2021, 12, 1, 11, 21, 30)),
    ]
    rejects = lake_rows(cubic, f"{ODS}__rejects")
    assert [(r["line"], r["column"], r["value"], r["reason"]) for r in rejects] == [
        (2, "edw_updated_dtm", "yesterday", "not a DATETIME"),
        (2, "sample_id", "x3", "not a INT4"),
        (3, "sample_id", "99999999999999999999", "not a INT4"),
    ]
    assert {r["identifier"] for r in rejects} == {"LOAD2.csv.gz"}


def test_late_and_same_second_files_are_loaded(cubic: Engine, root: Path) -> None:
    """The seed's watermark skipped any object not newer than the newest one loaded."""
    incoming = _sample(root)
    assert ran(run_once(cubic))
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    body = (sample / "ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz").read_bytes()
    dfm = (sample / "ods_qlik/EDW.SAMPLE__ct/20211201-112233444.dfm").read_bytes()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for name in ("20211130-000000001", "20211130-000000002"):
        (incoming / CT_PREFIX / f"{name}.csv.gz").write_bytes(body)
        (incoming / CT_PREFIX / f"{name}.dfm").write_bytes(dfm)
        _at(
            incoming / CT_PREFIX / f"{name}.csv.gz", old
        )  # older than everything loaded, same second
    assert run_once(cubic).counts.discovered == 2
    loads = by_key(cubic)
    assert loads[f"{CT_PREFIX}20211130-000000001.csv.gz"]["status"] == "archived"
    assert loads[f"{CT_PREFIX}20211130-000000002.csv.gz"]["status"] == "archived"
    assert len(lake_rows(cubic, f"{ODS}__ct")) == 8


def test_a_restart_supersedes_the_old_snapshots_waiting_loads(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    dfm_with(
        sample / "ods_qlik/EDW.SAMPLE/LOAD1.dfm", incoming / ODS_PREFIX / "LOAD1.dfm", start=SNAP
    )
    flow = cubic.cubic_flow
    with cubic.db.connection(autocommit=True) as conn:
        from sluice.ledger.repository import Ledger

        ledger = Ledger(conn)
        table = flow.register(ledger, declarations()[ODS])
        assert flow.scan(ledger, table).new == 4
        # Qlik restarts the table: the old files go, a new LOAD1 (another .dfm date) comes
        for name in ("LOAD1.csv.gz", "LOAD2.csv.gz", "LOAD2.dfm"):
            (incoming / ODS_PREFIX / name).unlink()
        for path in (incoming / CT_PREFIX).iterdir():
            path.unlink()
        write_gz(
            incoming / ODS_PREFIX / "LOAD1.csv.gz",
            "SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n7,Seven,,\n",
        )
        later = datetime(2022, 2, 2, 2, 2, 2, tzinfo=UTC)
        dfm_with(
            sample / "ods_qlik/EDW.SAMPLE/LOAD1.dfm",
            incoming / ODS_PREFIX / "LOAD1.dfm",
            start=later,
        )
        assert flow.scan(ledger, table).new == 1
    statuses = sorted((r["key"], r["status"]) for r in api.loads(cubic, table=ODS))
    assert statuses == [
        (f"{ODS_PREFIX}LOAD1.csv.gz", "ready_for_ingesting"),
        (f"{ODS_PREFIX}LOAD1.csv.gz", "superseded"),
        (f"{ODS_PREFIX}LOAD2.csv.gz", "superseded"),
        (f"{CT_PREFIX}20211201-112233444.csv.gz", "superseded"),
        (f"{CT_PREFIX}20211201-122433444.csv.gz", "superseded"),
    ]
    reasons = {r["reason"] for r in api.loads(cubic, table=ODS, status="superseded")}
    assert (
        "the table was restarted: snapshot 20220202T020202Z replaces this load's "
        "20220101T204950Z snapshot" in reasons
    )
    assert ran(run_once(cubic))
    assert lake_rows(cubic, ODS) == [
        {
            "sample_id": 7,
            "sample_name": "Seven",
            "edw_inserted_dtm": None,
            "edw_updated_dtm": None,
            "snapshot": "20220202T020202Z",
            "identifier": "LOAD1.csv.gz",
        }
    ]
    assert files(root / "archive" / "cubic/ods_qlik") == [
        "EDW.SAMPLE/snapshot=20220202T020202Z/LOAD1.csv.gz",
        "EDW.SAMPLE/snapshot=20220202T020202Z/LOAD1.dfm",
    ]


def test_bad_input_ends_in_error_with_its_reason_and_the_rest_lands(
    cubic: Engine, root: Path
) -> None:
    incoming = _sample(root)
    ct = incoming / CT_PREFIX
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    ct_dfm = sample / "ods_qlik/EDW.SAMPLE__ct/20211201-112233444.dfm"
    header = (
        "header__change_seq,header__change_oper,header__timestamp,"
        "SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
    )
    # a CSV whose header does not match its .dfm
    write_gz(
        ct / "20211202-000000001.csv.gz",
        header.replace(",EDW_UPDATED_DTM", ",EXTRA,EDW_UPDATED_DTM"),
    )
    dfm_with(ct_dfm, ct / "20211202-000000001.dfm")
    # a row with too few fields
    write_gz(ct / "20211202-000000002.csv.gz", header + "1,I,2021-10-08 13:12:31,4\n")
    dfm_with(ct_dfm, ct / "20211202-000000002.dfm")
    # a truncated gzip
    whole = gzip.compress((header + "1,I,2021-10-08 13:12:31,4,a,,\n" * 200).encode())
    (ct / "20211202-000000003.csv.gz").write_bytes(whole[: len(whole) // 2])
    dfm_with(ct_dfm, ct / "20211202-000000003.dfm")
    # a .dfm that is not JSON
    write_gz(ct / "20211202-000000004.csv.gz", header)
    (ct / "20211202-000000004.dfm").write_text("{not json")
    # no .dfm at all
    write_gz(ct / "20211202-000000005.csv.gz", header)

    assert ran(run_once(cubic))
    loads = by_key(cubic)
    bad = {k.rsplit("/", 1)[1]: v for k, v in loads.items() if "20211202-" in k}
    assert {k: v["status"] for k, v in bad.items()} == {
        f"20211202-00000000{i}.csv.gz": "errored" for i in range(1, 6)
    }
    where = f"{root / 'incoming'}/{CT_PREFIX}".replace(str(root), "")
    reasons = {k: v["reason"] for k, v in bad.items()}
    assert (
        "the header does not match the .dfm columns (not declared extra)"
        in reasons["20211202-000000001.csv.gz"]
    )
    assert "line 1" in reasons["20211202-000000001.csv.gz"]
    assert "the rows do not match the 7 declared columns" in reasons["20211202-000000002.csv.gz"]
    assert "Expected 7 columns, got 4" in reasons["20211202-000000002.csv.gz"]
    assert (
        "truncated" in reasons["20211202-000000003.csv.gz"]
        or "corrupt" in reasons["20211202-000000003.csv.gz"]
    )
    assert "the .dfm is not JSON" in reasons["20211202-000000004.csv.gz"]
    assert "20211202-000000004.dfm" in reasons["20211202-000000004.csv.gz"]
    assert "there is no .dfm beside it" in reasons["20211202-000000005.csv.gz"]
    for name, load in bad.items():
        assert where in load["reason"] or name in load["reason"], load["reason"]
        assert (
            load["error_key"]
            == f"{CT_PREFIX}timestamp={load['modified'].strftime('%Y%m%dT%H%M%SZ')}/{name}"
        )
    # every good file landed, each bad one sits in Error with its .dfm (when it had one)
    assert all(v["status"] == "archived" for k, v in loads.items() if "20211202-" not in k)
    assert len(lake_rows(cubic, f"{ODS}__ct")) == 4
    errored = files(root / "error")
    assert len([f for f in errored if f.endswith(".csv.gz")]) == 5
    assert len([f for f in errored if f.endswith(".dfm")]) == 4
    assert files(incoming) == []
    assert {r["identifier"] for r in lake_rows(cubic, f"{ODS}__ct")} == {
        "20211201-112233444.csv.gz",
        "20211201-122433444.csv.gz",
    }


def test_an_errored_load_is_retried_once_its_input_is_fixed(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    ct = incoming / CT_PREFIX
    sample = Path(__file__).resolve().parents[1] / "data/cubic-sample/cubic"
    ct_dfm = sample / "ods_qlik/EDW.SAMPLE__ct/20211201-112233444.dfm"
    header = (
        "header__change_seq,header__change_oper,header__timestamp,"
        "SAMPLE_ID,SAMPLE_NAME,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
    )
    write_gz(ct / "20211202-000000001.csv.gz", header + "9,I,2021-10-08 13:12:31,6,six,,\n")
    (ct / "20211202-000000001.dfm").write_text("{not json")
    assert ran(run_once(cubic))
    [bad] = [v for k, v in by_key(cubic).items() if "20211202-" in k]
    assert bad["status"] == "errored"
    # the operator fixes the .dfm where the file now is, in Error, and retries the load
    [dfm] = (root / "error").rglob("20211202-000000001.dfm")
    dfm_with(ct_dfm, dfm)
    assert cubic.retry(load_ids=[bad["id"]]) == [bad["id"]]
    assert sorted(p.name for p in ct.iterdir() if p.name.startswith("20211202-")) == [
        "20211202-000000001.csv.gz",
        "20211202-000000001.dfm",
    ]
    assert ran(run_once(cubic))
    versions = sorted(
        (r["id"], r["status"]) for r in api.loads(cubic, table=ODS) if "20211202-" in r["key"]
    )
    # the file back in Incoming is a new version that lands; the errored one is superseded by it
    assert [status for _, status in versions] == ["superseded", "archived"]
    assert "20211202-000000001.csv.gz" in {r["identifier"] for r in lake_rows(cubic, f"{ODS}__ct")}
    with pytest.raises(ConfigError, match="is not an errored cubic load"):
        cubic.retry(load_ids=[versions[1][0]])


def test_files_before_the_snapshot_go_to_error(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    (incoming / ODS_PREFIX / "LOAD1.csv.gz").unlink()
    assert ran(run_once(cubic))
    loads = by_key(cubic)
    ods = {k: v for k, v in loads.items() if k.startswith("cubic/ods")}
    assert {v["status"] for v in ods.values()} == {"errored"}
    assert {v["reason"] for v in ods.values()} == {
        "arrived before its table has a snapshot "
        "(cubic/ods_qlik/EDW.SAMPLE/LOAD1.csv.gz not seen yet)"
    }


def test_a_listing_cap_resumes_where_it_stopped(settings: Settings, root: Path) -> None:
    incoming = _sample(root)
    with open_engine(settings=cubic_settings(settings, root, listing_cap=3)) as engine:
        flow = engine.cubic_flow
        from sluice.ledger.repository import Ledger

        with engine.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            table = flow.register(ledger, declarations()[ODS])
            found = [flow.scan(ledger, table).new for _ in range(3)]
        assert found == [3, 1, 0]
        assert len(api.loads(engine, table=ODS)) == 4
        assert files(incoming / ODS_PREFIX) != []


def test_an_inactive_table_is_neither_scanned_nor_advanced(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    api.add_table(cubic, declarations()[DMAP])
    api.add_table(cubic, declarations()[ODS])
    api.set_active(cubic, ODS, False)
    assert ran(run_once(cubic))
    assert api.loads(cubic, table=ODS) == []
    assert len(files(incoming / ODS_PREFIX)) == 4
    assert {r["status"] for r in api.loads(cubic, table=DMAP)} == {"archived"}
    # scanned while active, then paused: its loads wait
    api.set_active(cubic, ODS, True)
    from sluice.ledger.repository import Ledger

    with cubic.db.connection(autocommit=True) as conn:
        ledger = Ledger(conn)
        cubic.cubic_flow.scan(ledger, cubic.cubic_flow.register(ledger, declarations()[ODS]))
    api.set_active(cubic, ODS, False)
    assert ran(run_once(cubic))
    assert {r["status"] for r in api.loads(cubic, table=ODS)} == {"ready_for_ingesting"}
    status = api.status(cubic)
    assert status.loads[ODS] == {"ready_for_ingesting": 4}
    assert [t.active for t in status.tables if t.name == ODS] == [False]


def test_unknown_prefixes_are_counted(cubic: Engine, root: Path) -> None:
    incoming = _sample(root)
    write_gz(incoming / "cubic/ods_qlik/EDW.OTHER/LOAD00000001.csv.gz", "A\n1\n")
    assert ran(run_once(cubic))
    assert api.status(cubic).unknown_prefixes == ["cubic/ods_qlik/EDW.OTHER/"]
    assert files(incoming) == ["cubic/ods_qlik/EDW.OTHER/LOAD00000001.csv.gz"]


def test_registered_tables_and_their_prefixes(cubic: Engine) -> None:
    row = api.add_table(cubic, TableDeclaration("t1", "cubic/dmap/t1/", kind="dmap"))
    assert (row.name, row.prefix, row.kind, row.active) == ("t1", "cubic/dmap/t1/", "dmap", True)
    from sluice.errors import ConfigError

    with pytest.raises(ConfigError, match="the prefix cubic/dmap/t1/ is already table 't1'"):
        api.add_table(cubic, TableDeclaration("t2", "cubic/dmap/t1/", kind="dmap"))
    with pytest.raises(ConfigError, match="there is no cubic table 'nope'"):
        api.set_active(cubic, "nope", False)
    assert [t.name for t in api.tables(cubic)] == ["t1"]


def test_a_table_with_a_current_view_feeds_it_in_the_loads_transaction(
    settings: Settings, root: Path, db: Any
) -> None:
    """The view's values are checked by the current view's own tests; here, that the routing
    hands it each LOAD and change file in order, in the load's transaction."""
    _sample(root)
    tables = declarations()
    tables[ODS] = TableDeclaration(
        ODS, ODS_PREFIX, snapshot_key="LOAD1.csv.gz", raw=False, current_view=True
    )
    with open_engine(settings=cubic_settings(settings, root, tables)) as engine:
        assert ran(run_once(engine))
        assert {r["status"] for r in api.loads(engine, table=ODS)} == {"archived"}
    rows = db.execute("SELECT sample_id, sample_name FROM ods.edw_sample ORDER BY 1").fetchall()
    assert rows == [
        (1, "Sample 1 🔥"),
        (2, "Sample 2 🔥🔥"),
        (3, "Sample 3"),
        (4, "Sample 4 🔥🔥🔥🔥"),
        (5, "Sample 5 🔥🔥🔥🔥🔥"),
    ]


def test_stream_files_land_one_row_per_line(settings: Settings, root: Path) -> None:
    incoming = root / "incoming"
    write_gz(incoming / "cubic/kafka/taps/1-2.jsonl.gz", '{"tap": 1}\n{"tap": 2, "x": [1]}\n')
    write_gz(incoming / "cubic/kafka/taps/3-4.jsonl.gz", '{"tap": 3}\nnot json\n')
    tables = {
        "cubic_kafka__taps": TableDeclaration(
            "cubic_kafka__taps", "cubic/kafka/taps/", kind="stream"
        )
    }
    with open_engine(settings=cubic_settings(settings, root, tables)) as engine:
        assert ran(run_once(engine))
        loads = by_key(engine)
        assert loads["cubic/kafka/taps/1-2.jsonl.gz"]["status"] == "archived"
        bad = loads["cubic/kafka/taps/3-4.jsonl.gz"]
        assert bad["status"] == "errored"
        assert "3-4.jsonl.gz, line 2: not a JSON document" in bad["reason"]
        assert lake_rows(engine, "raw_cubic_kafka__taps") == [
            {"line": 1, "value": '{"tap": 1}', "identifier": "1-2.jsonl.gz"},
            {"line": 2, "value": '{"tap": 2, "x": [1]}', "identifier": "1-2.jsonl.gz"},
        ]
    assert files(root / "archive") == ["cubic/kafka/taps/1-2.jsonl.gz"]


def test_new_loads_are_grouped_in_the_seeds_batches(settings: Settings, root: Path) -> None:
    incoming = root / "incoming"
    for i in range(12):
        write_gz(incoming / f"cubic/dmap/agg_sample/day_{i:02d}.csv.gz", "a\n1\n")
    tables = {DMAP: TableDeclaration(DMAP, DMAP_PREFIX, kind="dmap", lake=False)}
    with open_engine(settings=cubic_settings(settings, root, tables)) as engine:
        assert ran(run_once(engine))
        rows = api.loads(engine, table=DMAP)
    batches = [r["batch"] for r in rows]
    assert len(set(batches)) == 2
    assert sorted(batches.count(b) for b in set(batches)) == [2, 10]
    assert {r["status"] for r in rows} == {"archived"}
    assert {r["lake_table"] for r in rows} == {None}  # routed only
    assert len(files(root / "archive")) == 12
