"""Finding a feed's objects: the listing is narrowed by the pattern's literal prefix, and every
key must fully match the pattern below the source prefix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.discovery import list_matching, literal_prefix
from sluice.recipes.glam.tables import PRODUCTS, Product, shard_name, shard_pattern
from sluice.store import Store, locate

#: The default pattern of a feed declared in a project file.
DEFAULT_PATTERN = r".*\.csv(\.gz)?"


@pytest.mark.parametrize(
    ("product", "channel", "prefix"),
    [
        ("desktop", "nightly", "aggs-desktop-nightly-"),
        ("desktop", "release", "aggs-desktop-release-"),
        ("fenix", "nightly", "glam-extract-org_mozilla_fenix_glam_nightly-"),
        ("fog", "beta", "glam-extract-firefox_desktop_glam_beta-"),
    ],
)
def test_literal_prefix_of_glam_patterns(product: Product, channel: str, prefix: str) -> None:
    pattern = shard_pattern(product, channel)

    assert literal_prefix(pattern) == prefix
    for shard in (0, 7, 123):
        for gz in (False, True):
            name = shard_name(product, channel, shard, gzip=gz)
            assert re.fullmatch(pattern, name)
            assert name.startswith(prefix)


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("abc", "abc"),
        ("a?", ""),
        ("ab?", "a"),
        ("ab*", "a"),
        ("ab*c", "a"),
        ("ab+", "ab"),
        ("ab+c", "ab"),
        ("ab{2}", "a"),
        ("ab{0,3}c", "a"),
        ("x|y", ""),
        ("ab|ac", ""),
        ("(ab)c", ""),
        ("a.b", "a"),
        ("a[bc]d", "a"),
        (r"a\.b", "a.b"),
        (r"a\.?b", "a"),
        (r"a\-b", "a-b"),
        (r"a\-?b", "a"),
        (r"a\\b", "a\\b"),
        (r"a\/b", "a/b"),
        (r"a\d+", "a"),
        (r"a\w", "a"),
        (r"a\sb", "a"),
        (r"\d{4}/x", ""),
        ("^abc", ""),
        ("dir/sub/file-", "dir/sub/file-"),
        (r"dir/file\.csv$", "dir/file.csv"),
        ("", ""),
    ],
)
def test_literal_prefix_of_tricky_patterns(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("a?b", ["b", "ab"]),
        ("ab*c", ["ac", "abc", "abbbc"]),
        ("ab{0,3}c", ["ac", "abbbc"]),
        ("x|y", ["x", "y"]),
        ("(ab|cd)e", ["abe", "cde"]),
        ("a(b|c)", ["ab", "ac"]),
        (r"a\.?b", ["ab", "a.b"]),
        (r"a\\?b", ["ab", "a\\b"]),
        (r"a\-?b", ["ab", "a-b"]),
        (r"abc|abd", ["abc", "abd"]),
        (r"[ab]x", ["ax", "bx"]),
    ],
)
def test_every_match_starts_with_the_literal_prefix(pattern: str, matches: list[str]) -> None:
    prefix = literal_prefix(pattern)
    for text in matches:
        assert re.fullmatch(pattern, text), text  # the example is a real match
        assert text.startswith(prefix), (pattern, prefix, text)


# -- listing a local folder ---------------------------------------------------------------------


def folder(tmp_path: Path, keys: list[str]) -> Store:
    store, prefix = locate(str(tmp_path / "bucket"), create=True)
    assert prefix == ""
    for key in keys:
        store.put(key, b"1,2\n")
    return store


def keys_of(store: Store, prefix: str, pattern: str) -> list[str]:
    return [info.key for info in list_matching(store, prefix, pattern)]


def test_glam_shards_are_selected_and_nothing_else(tmp_path: Path) -> None:
    shards = [shard_name("fenix", "nightly", i) for i in range(3)]
    store = folder(
        tmp_path,
        [
            *shards,
            "glam-extract-org_mozilla_fenix_glam_nightly-counts.csv",
            "glam-extract-org_mozilla_fenix_glam_beta-000000000000.csv",
            "glam-extract-org_mozilla_fenix_glam_nightly-000000000001.csv.bak",
            "old/glam-extract-org_mozilla_fenix_glam_nightly-000000000000.csv",
            "xglam-extract-org_mozilla_fenix_glam_nightly-000000000000.csv",
            "_sluice_glam_fenix_nightly.json",
        ],
    )

    assert keys_of(store, "", shard_pattern("fenix", "nightly")) == shards


def test_pattern_must_match_the_whole_key_below_the_prefix(tmp_path: Path) -> None:
    store = folder(
        tmp_path,
        ["in/a1.csv", "in/a22.csv", "in/a1.csv.gz", "in/a1.csv.old", "in/xa1.csv", "in/a.csv"],
    )

    assert keys_of(store, "in", r"a\d+\.csv") == ["in/a1.csv", "in/a22.csv"]
    assert keys_of(store, "in/", r"a\d+\.csv(\.gz)?") == ["in/a1.csv", "in/a1.csv.gz", "in/a22.csv"]
    # the pattern is matched below the prefix, not against the whole key
    assert keys_of(store, "", r"a\d+\.csv") == []
    assert keys_of(store, "", r"in/a\d+\.csv") == ["in/a1.csv", "in/a22.csv"]


def test_results_are_sorted_by_key(tmp_path: Path) -> None:
    names = [f"part-{n}.csv" for n in (10, 2, 33, 1, 200)]
    store = folder(tmp_path, names)

    assert keys_of(store, "", r"part-\d+\.csv") == sorted(names)


def test_counts_files_are_not_shards(tmp_path: Path) -> None:
    for product in PRODUCTS:
        if product == "desktop":
            continue
        pattern = shard_pattern(product, "release")
        stem = literal_prefix(pattern)
        store = folder(tmp_path / product, [f"{stem}counts.csv", f"{stem}000000000000.csv"])

        assert keys_of(store, "", pattern) == [f"{stem}000000000000.csv"]


def test_a_prefix_selects_whole_path_segments(tmp_path: Path) -> None:
    store = folder(
        tmp_path,
        ["1000/a.csv", "1000/sub/b.csv", "10001/a.csv", "1000a/a.csv", "1000.csv", "100/a.csv"],
    )

    assert keys_of(store, "1000", r".*\.csv") == ["1000/a.csv", "1000/sub/b.csv"]
    assert keys_of(store, "1000/", r"a\.csv") == ["1000/a.csv"]
    assert keys_of(store, "1000/sub", r".*") == ["1000/sub/b.csv"]
    assert keys_of(store, "100", r"a\.csv") == ["100/a.csv"]


def test_a_literal_prefix_with_folders_narrows_the_listing(tmp_path: Path) -> None:
    store = folder(tmp_path, ["exports/2024/x-1.csv", "exports/2025/x-2.csv", "exports/x-3.csv"])

    assert keys_of(store, "exports", r"2024/x-\d+\.csv") == ["exports/2024/x-1.csv"]
    assert keys_of(store, "exports", r"20\d\d/x-\d+\.csv") == [
        "exports/2024/x-1.csv",
        "exports/2025/x-2.csv",
    ]
    assert keys_of(store, "exports", r"x-\d+\.csv") == ["exports/x-3.csv"]


def test_a_missing_prefix_finds_nothing(tmp_path: Path) -> None:
    store = folder(tmp_path, ["in/a.csv"])

    assert keys_of(store, "out", DEFAULT_PATTERN) == []


def test_rejects_files_are_never_shards(tmp_path: Path) -> None:
    shard = shard_name("desktop", "nightly", 0)
    store = folder(tmp_path, [shard, f"{shard}.rejects-12.csv"])

    assert keys_of(store, "", shard_pattern("desktop", "nightly")) == [shard]


def test_rejects_files_are_not_picked_up_by_the_default_feed_pattern(tmp_path: Path) -> None:
    # A feed in `reject` mode writes <object>.rejects-<load>.csv beside its source; the next
    # run must not take it for new input.
    store = folder(tmp_path, ["in/a.csv", "in/a.csv.rejects-3.csv", "in/b.csv.gz"])

    assert keys_of(store, "in", DEFAULT_PATTERN) == ["in/a.csv", "in/b.csv.gz"]
