"""The fast paths of the intake: they must give what the general paths give, value for value."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.exceptions import DataError

from sluice.intake.body import BodyLimits, document
from sluice.intake.errors import ParseError
from sluice.intake.lenient import (
    DROP,
    Imprecise,
    Integer,
    Node,
    Number,
    Problems,
    Record,
    Text,
    Vocabulary,
    watching_floats,
)
from sluice.intake.queue import _Connection, encoded
from sluice.recipes.ichnaea.schemas import RADIO, SOURCE

VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["", "1", "1.5", "-7", "1e3", "nan", "LTE", "umts", "gnss", "Fused"])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
LEAVES: list[Node] = [Integer(), Number(), Text(), RADIO, SOURCE]


def _through_record(node: Node, value: Any) -> tuple[Any, dict[str, str]]:
    problems = Problems()
    return Record({"f": node}).clean({"f": value}, None, problems), problems.found


def _by_the_node(node: Node, value: Any) -> tuple[Any, dict[str, str]]:
    problems = Problems()
    cleaned = node.clean(value, (None, "f"), problems)
    return (DROP if cleaned is DROP else {"f": cleaned}), problems.found


@settings(max_examples=400, deadline=None)
@given(value=VALUES, index=st.integers(min_value=0, max_value=len(LEAVES) - 1))
def test_a_record_keeps_what_its_field_node_keeps(value: Any, index: int) -> None:
    node = LEAVES[index]
    got, got_problems = _through_record(node, value)
    want, want_problems = _by_the_node(node, value)
    assert got_problems == want_problems
    if isinstance(want, dict) and isinstance(want["f"], float) and math.isnan(want["f"]):
        pytest.fail("a NaN was kept")
    assert got == want
    if isinstance(got, dict):
        assert type(got["f"]) is type(want["f"])


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (1.5, 1.5),
        (3, 3.0),
        (math.inf, None),
        (-math.inf, None),
        (math.nan, None),
        (True, None),
        ("", None),
        ("x", "x"),
        (10**400, None),
    ],
)
def test_values_of_the_right_type_are_kept_as_they_are_and_bad_ones_dropped(
    value: Any, kept: Any
) -> None:
    record = Record({"n": Number(), "t": Text(), "i": Integer()})
    name = "t" if isinstance(value, str) else ("i" if type(value) is bool else "n")
    problems = Problems()
    cleaned = record.clean({name: value}, None, problems)
    if kept is None:
        assert cleaned is DROP
    else:
        assert cleaned == {name: kept} and type(cleaned[name]) is type(kept)


def _vocabulary_by_hand(vocabulary: Vocabulary, value: str) -> Any:
    """What the seed does: lower-case, rewrite by the aliases, keep only words."""
    word = value.lower()
    word = vocabulary.aliases.get(word, word)
    return word if word in vocabulary.words else DROP


@pytest.mark.parametrize(
    "value",
    ["lte", "LTE", "Lte", "umts", "UMTS", "wcdma", "gsm", "gps", "", "nr", "old", "OLD", "X"],
)
def test_vocabulary_words_and_aliases_as_the_general_path_reads_them(value: str) -> None:
    odd = Vocabulary(
        frozenset({"gsm", "lte", "wcdma", "Mixed"}),
        aliases={"umts": "wcdma", "old": "gone", "X": "gsm", "gsm": "lte"},
    )
    for vocabulary in (RADIO, SOURCE, odd):
        assert vocabulary.clean(value, None, Problems()) == _vocabulary_by_hand(vocabulary, value)


def test_a_huge_float_in_an_integer_field_asks_for_the_exact_parser_only_when_watched() -> None:
    assert Integer().clean(2.0**64, None, Problems()) == 2**64
    assert Integer().clean(-(2.0**63), None, Problems()) == -(2**63)
    with watching_floats(), pytest.raises(Imprecise):
        Integer().clean(2.0**64, None, Problems())
    with watching_floats():
        assert Integer().clean(2.0**62, None, Problems()) == 2**62
        assert Integer().clean(12.9, None, Problems()) == 12


LIMITS = BodyLimits()


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b'{"a": 1, "a": 2}', {"a": 2}),
        (b'[18446744073709551615, -9223372036854775808, 1.5, "\\u00e9"]', None),
        (b'{"a": "\\ud800"}', {"a": "\ud800"}),
    ],
)
def test_a_body_parses_as_the_standard_library_parses_it(raw: bytes, parsed: Any) -> None:
    expected = json.loads(raw.decode("utf-8")) if parsed is None else parsed
    assert document(raw, {}, LIMITS) == expected
    assert document(raw, {}, LIMITS, exact=True) == expected


def test_nan_infinity_and_huge_integers_go_to_the_standard_parser() -> None:
    got = document(b'{"a": NaN, "b": -Infinity, "c": 1e400}', {}, LIMITS)
    assert math.isnan(got["a"]) and got["b"] == -math.inf and got["c"] == math.inf
    assert document(b"[18446744073709551617]", {}, LIMITS, exact=True) == [18446744073709551617]


@pytest.mark.parametrize(
    ("raw", "decode"),
    [
        (b'{"items": [}', "Expecting value: line 1 column 12 (char 11)"),
        (b"[1]x", "Extra data: line 1 column 4 (char 3)"),
        (b'{"a": "\x01"}', "Invalid control character at: line 1 column 8 (char 7)"),
        (
            b"\xef\xbb\xbf[1]",
            "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
        ),
    ],
)
def test_bad_json_is_worded_by_the_standard_library(raw: bytes, decode: str) -> None:
    with pytest.raises(ParseError) as caught:
        document(raw, {}, LIMITS)
    assert caught.value.details == {"decode": decode}


def test_a_body_that_is_not_utf8_is_refused_as_before() -> None:
    with pytest.raises(ParseError) as caught:
        document(b'"\xff"', {}, LIMITS)
    assert caught.value.message.startswith("the body is not utf-8: 'utf-8' codec can't decode")


@pytest.mark.parametrize(
    "report",
    [
        {"cellTowers": [{"cellId": 5, "age": 2}], "position": {"latitude": 1e-7, "source": "x"}},
        {"wifiAccessPoints": [{"macAddress": "01", "ssid": "café \u2028 \x7f"}]},
        {"cellTowers": [{"cellId": 2**64 + 1}]},
        {"wifiAccessPoints": [{"macAddress": "01", "ssid": "\ud800"}]},
    ],
)
def test_a_queued_report_reads_back_as_the_report(report: dict[str, Any]) -> None:
    assert json.loads(encoded(report)) == report


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "abc", 2, "k:intake", "k:counters", 1000000000, 1, "", "gnss", b'{"a":1}'),
        ("HINCRBY", "k", "dropped:no_networks", -3),
        ("SET", "k", 1.5, 1e-7, 2**70, "caf\u00e9", bytearray(b"ab"), memoryview(b"cd")),
        ("CLIENT SETNAME", "x"),
        (b"SCRIPT LOAD", "return 1"),
        ("SET", "k", b"x" * 100_000),
    ],
)
def test_commands_are_packed_as_redis_py_packs_them(args: tuple[Any, ...]) -> None:
    ours = _Connection()
    theirs = redis.asyncio.Connection()
    assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))


@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_to_pack_is_refused(bad: Any) -> None:
    with pytest.raises(DataError):
        _Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        redis.asyncio.Connection().pack_command("SET", "k", bad)
