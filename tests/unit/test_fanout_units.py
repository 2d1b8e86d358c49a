"""The fan-out's pure parts: export configs (sets, skips, checks), the exporter registry, the
bucket URL templates, the geosubmit body, and the recipe API's public names."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sluice.errors import ConfigError
from sluice.fanout import exporters
from sluice.fanout.configs import ExportConfig, check, parse_set
from sluice.fanout.exporters import Batch, Bucket, ExportContext, Item, split_template
from sluice.recipes.ichnaea import api


def test_the_recipe_api_names() -> None:
    assert api.__all__ == [
        "ExportConfig",
        "IchnaeaOptions",
        "add_export",
        "add_key",
        "delivery_status",
        "full_status",
        "keys",
        "list_dead_letters",
        "list_exports",
        "list_keys",
        "open_intake",
        "openapi_paths",
        "redrive",
        "remove_export",
        "remove_key",
        "routes",
        "run_fanout",
        "status",
        "update_export",
        "update_key",
    ]


def test_comma_separated_sets() -> None:
    assert parse_set("") == frozenset()
    assert parse_set(None) == frozenset()
    assert parse_set(" a, b,,a ") == frozenset({"a", "b"})


def test_skips_by_key_and_source() -> None:
    config = ExportConfig(
        "x", "dummy", skip_keys=frozenset({"k1"}), skip_sources=frozenset({"query"})
    )
    assert config.skips("k1", "gnss")
    assert config.skips(None, "query")
    assert not config.skips(None, "gnss")
    assert not config.skips("k2", "fused")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ExportConfig("Bad Name", "dummy"), "export name 'Bad Name': 1-40 characters"),
        (
            ExportConfig("x", "nope"),
            "unknown kind 'nope' (known: bucket, dummy, geosubmit, internal)",
        ),
        (ExportConfig("x", "dummy", batch=5001), "batch must be 1-5000, got 5001"),
        (ExportConfig("x", "dummy", max_attempts=0), "max attempts must be 1 or more"),
    ],
)
def test_bad_configs_are_refused(config: ExportConfig, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check(config, exporters.kinds())
    assert message in str(caught.value)


def test_url_checks_per_kind() -> None:
    with pytest.raises(ConfigError, match="needs an http"):
        exporters.check_url(ExportConfig("g", "geosubmit"))
    with pytest.raises(ConfigError, match="bad placeholder"):
        exporters.check_url(ExportConfig("b", "bucket", url="s3://b/{nope}"))
    exporters.check_url(ExportConfig("b", "bucket", url="s3://b/p/{source}/{year}"))


def test_a_kind_is_registered_by_name() -> None:
    class Counting:
        def send(self, batch: Batch) -> None:
            return None

        def close(self) -> None:
            return None

    exporters.register("counting-test", lambda config, context: Counting())
    try:
        made = exporters.make(ExportConfig("c", "counting-test"), ExportContext())
        assert isinstance(made, Counting)
    finally:
        del exporters.EXPORTERS["counting-test"]


def test_bucket_templates_split_at_the_first_placeholder() -> None:
    assert split_template("s3://b/p/{source}/{api_key}") == ("s3://b/p", "{source}/{api_key}")
    assert split_template("s3://b/p/x{year}") == ("s3://b/p", "x{year}")
    assert split_template("/data/out/") == ("/data/out", "")


def test_bucket_objects_per_folder_named_by_the_batch(tmp_path: Path) -> None:
    url = f"{tmp_path}/{{source}}/{{api_key}}/{{year}}/{{month}}/{{day}}"
    bucket = Bucket(ExportConfig("b", "bucket", url=url), ExportContext())
    millis = 1_700_000_000_000  # 2023-11-14 UTC
    items = [
        Item(f"{millis}-0", None, "gnss", b'{"a":1}'),
        Item(f"{millis}-1", "k", "gnss", b'{"a":2}'),
        Item(f"{millis}-2", None, "gnss", b'{"a":3}'),
    ]
    bucket.send(Batch("b", "1700000000001-5", items))
    found = {
        str(p.relative_to(tmp_path)): gzip.decompress(p.read_bytes()).decode()
        for p in tmp_path.rglob("*.gz")
    }
    assert found == {
        "gnss/no_key/2023/11/14/1700000000001_5.json.gz": '{"a":1}\n{"a":3}\n',
        "gnss/k/2023/11/14/1700000000001_5.json.gz": '{"a":2}\n',
    }


def test_urls_in_messages_hide_their_secrets() -> None:
    assert (
        exporters.shown_url("https://u:pw@h/v2/geosubmit?key=abcdef&x=1&token=t")
        == "https://u:***@h/v2/geosubmit?key=***&x=1&token=***"
    )
