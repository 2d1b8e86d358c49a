"""The DMAP fetcher's pure parts: result checks, the query timestamp, the key by path prefix,
the ``[cubic.dmap]`` settings, and the public surface of ``sluice.fetch``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

import sluice.fetch
from sluice.config import load_settings
from sluice.errors import ConfigError
from sluice.fetch import check_results, query_stamp
from sluice.recipes.cubic.dmap import DmapOptions, check_relative_url, object_key

GOOD = {
    "id": "agg_sample",
    "dataset_id": "agg_sample_20220517",
    "url": "https://blob.example.net/container/agg_sample_20220517.csv.gz?sig=abc",
    "start_date": "2022-05-17",
    "end_date": "2022-05-17",
    "last_updated": "2022-05-22T20:49:50.123456",
}


def test_the_public_surface_of_sluice_fetch_is_pinned() -> None:
    assert sluice.fetch.__all__ == [
        "KIND",
        "ApiFeed",
        "ApiFetcher",
        "ApiSource",
        "Dataset",
        "FeedReport",
        "FetchDeclaration",
        "FetchFlow",
        "FetchLedger",
        "FetchedDataset",
        "HttpOptions",
        "Invalid",
        "LinkExpired",
        "check_results",
        "query_stamp",
    ]


def test_the_query_asks_for_the_watermark_plus_one_microsecond() -> None:
    assert query_stamp(datetime(2022, 5, 22, 20, 49, 50, 123456), None) == (
        "2022-05-22T20:49:50.123457"
    )
    assert query_stamp(datetime(2022, 5, 22, 23, 59, 59, 999999), None) == (
        "2022-05-23T00:00:00.000000"
    )
    assert query_stamp(None, None) is None
    assert query_stamp(datetime(2022, 1, 1), datetime(2021, 1, 1, 5)) == (
        "2021-01-01T05:00:00.000000"
    )


def test_a_valid_result_becomes_a_dataset_and_the_newest_of_two_is_kept() -> None:
    newer = {**GOOD, "last_updated": "2022-05-23T01:00:00Z"}
    found, invalid = check_results([GOOD, newer])
    assert invalid == []
    assert len(found) == 1
    dataset = found[0]
    assert (dataset.kind, dataset.dataset_id, dataset.start_date) == (
        "agg_sample",
        "agg_sample_20220517",
        date(2022, 5, 17),
    )
    assert dataset.last_updated == datetime(2022, 5, 23, 1, 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"url": None}, "url must be text"),
        ({"end_date": "17/05/2022"}, "end_date '17/05/2022' is not an ISO date (YYYY-MM-DD)"),
        ({"end_date": "2022-02-30"}, "end_date '2022-02-30' is not an ISO date (YYYY-MM-DD)"),
        (
            {"last_updated": "2022-05-22 20:49"},
            "last_updated '2022-05-22 20:49' is not an ISO timestamp",
        ),
        ({"url": "https://blob.example.net"}, "url 'https://blob.example.net' has no path"),
        ({"url": "ftp://blob.example.net/a"}, "url 'ftp://blob.example.net/a' is not https"),
        ({"url": "http://127.0.0.1:9/a"}, "url 'http://127.0.0.1:9/a' is not https"),
        ({"id": "a/b"}, "id 'a/b' is not a plain name"),
        ({"dataset_id": "x\n"}, "dataset_id 'x\\n' is not a plain name"),
    ],
)
def test_an_invalid_result_says_why(change: dict[str, object], reason: str) -> None:
    found, invalid = check_results([{**GOOD, **change}])
    assert found == []
    assert [i.reason for i in invalid] == [reason]


def test_plain_http_links_pass_only_on_loopback_when_allowed() -> None:
    local = {**GOOD, "url": "http://127.0.0.1:8123/blob/x"}
    assert len(check_results([local], allow_http_loopback=True)[0]) == 1
    remote = {**GOOD, "url": "http://blob.example.net/blob/x"}
    assert check_results([remote], allow_http_loopback=True)[1][0].reason == (
        "url 'http://blob.example.net/blob/x' is not https"
    )


def test_the_key_is_chosen_by_path_prefix_and_never_shown() -> None:
    options = DmapOptions(base_url="https://dmap.example", controlled_key="ck1", public_key="pk2")
    assert options.headers_for("/datasetcontrolleduserapi/datasets/x") == {"apikey": "ck1"}
    assert options.headers_for("/datasetpublicusersapi/datasets/x") == {"apikey": "pk2"}
    with pytest.raises(ConfigError, match="neither /datasetcontrolleduserapi"):
        options.headers_for("/other/x")
    assert "ck1" not in repr(options) and "pk2" not in repr(options)
    assert object_key("agg_sample", "agg_sample_1") == "cubic/dmap/agg_sample/agg_sample_1.csv.gz"
    with pytest.raises(ConfigError, match="a path below the base URL"):
        check_relative_url("https://dmap.example/datasetcontrolleduserapi/x")


def test_cubic_dmap_settings_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    project = tmp_path / "sluice.toml"
    project.write_text(
        '[cubic.dmap]\nbase_url = "https://dmap.example/"\ncontrolled_key = "from-file"\n'
        "attempts = 3\n"
    )
    settings = load_settings(project, environ={"SLUICE_CUBIC_DMAP_PUBLIC_KEY": "from-env"})
    dmap = settings.cubic_dmap
    assert (dmap.base_url, dmap.controlled_key, dmap.public_key, dmap.attempts) == (
        "https://dmap.example",
        "from-file",
        "from-env",
        3,
    )
    assert dmap.configured and dmap.schedule == "0 15 * * *"
    project.write_text("[cubic.dmap]\ncontrolled_key = 12345\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(project, environ={})
    assert str(caught.value).endswith("[cubic.dmap]: controlled_key must be a string")
    assert "12345" not in str(caught.value)
