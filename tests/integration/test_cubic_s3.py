"""The Cubic routing with Incoming, Archive, Error and the lake on S3 (the S3-compatible
server process the tests start): the same keys and rows as with local folders."""

from __future__ import annotations

from pathlib import Path

from sluice.api import open_engine
from sluice.config import Settings
from tests.fixtures.fix_s3 import s3_client
from tests.integration.cubic_seed import SAMPLE, cubic_settings, lake_rows, run_once


def _keys(client: object, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_routing_between_s3_locations(
    settings: Settings, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    client = s3_client(s3_endpoint)
    for path in sorted(SAMPLE.rglob("*")):
        if path.is_file():
            key = f"in/cubic/{path.relative_to(SAMPLE).as_posix()}"
            client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    client.put_object(Bucket=s3_bucket, Key="in/cubic/dmap/agg_sample/empty.csv.gz", Body=b"")
    here = cubic_settings(
        settings,
        tmp_path,
        incoming=f"s3://{s3_bucket}/in",
        archive=f"s3://{s3_bucket}/archive",
        error=f"s3://{s3_bucket}/error",
        lake=f"s3://{s3_bucket}/lake",
        endpoint_url=s3_endpoint,
    )
    with open_engine(settings=here) as engine:
        run_once(engine)
        assert _keys(client, s3_bucket, "in/") == []
        archived = _keys(client, s3_bucket, "archive/")
        assert len(archived) == 10
        assert "archive/cubic/dmap/agg_sample/agg_sample_20220517.csv.gz" in archived
        ods = [k for k in archived if k.startswith("archive/cubic/ods_qlik/EDW.SAMPLE/snapshot=")]
        assert sorted(k.rsplit("/", 1)[1] for k in ods) == [
            "LOAD1.csv.gz",
            "LOAD1.dfm",
            "LOAD2.csv.gz",
            "LOAD2.dfm",
        ]
        errored = _keys(client, s3_bucket, "error/")
        assert len(errored) == 1 and errored[0].startswith("error/cubic/dmap/agg_sample/timestamp=")
        assert errored[0].endswith("/empty.csv.gz")
        body = client.get_object(Bucket=s3_bucket, Key=ods[0])["Body"].read()
        assert body == (SAMPLE / "ods_qlik/EDW.SAMPLE/LOAD1.csv.gz").read_bytes()
        rows = lake_rows(engine, "cubic_ods_qlik__edw_sample")
        assert [(r["sample_id"], r["sample_name"]) for r in rows] == [
            (1, "Sample 1 🔥"),
            (2, "Sample 2"),
            (3, "Sample 3"),
        ]
        assert len(lake_rows(engine, "cubic_ods_qlik__edw_sample__ct")) == 4
        assert _keys(client, s3_bucket, "lake/")  # the warehouse is in the bucket
