"""The intake's pure parts as the Ichnaea routes use them: bodies within bounds, gzip against
bombs, charsets, error bodies, key validity, sampling and the key cache."""

from __future__ import annotations

import asyncio
import gzip
import logging
import pickle
from collections.abc import AsyncIterator

import pytest

from sluice.errors import DatabaseUnavailable
from sluice.intake.body import BodyLimits, charset, document, read_body
from sluice.intake.errors import Backlogged, LimitExceeded, ParseError, QueueDown, TooLarge
from sluice.intake.http import Intake, error_body
from sluice.intake.keys import ApiKey, KeyCache, is_valid, keeps, masked
from sluice.intake.throttle import Throttled
from sluice.recipes.ichnaea.api import openapi_paths

LIMITS = BodyLimits(max_bytes=1000, max_inflated=10_000)
JSON = {"content-type": "application/json"}
GZIP = {**JSON, "content-encoding": "gzip"}


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def read(*parts: bytes, headers: dict[str, str] | None = None) -> bytes:
    return asyncio.run(read_body(_chunks(*parts), headers or {}, LIMITS))


def test_body_is_read_whole_within_the_bound() -> None:
    assert read(b"ab", b"cd") == b"abcd"


def test_body_over_the_bound_is_refused_while_read_or_by_its_length() -> None:
    with pytest.raises(TooLarge):
        read(b"x" * 600, b"x" * 600)
    with pytest.raises(TooLarge):
        read(b"", headers={"content-length": "1001"})


def test_json_and_gzip_json_documents() -> None:
    assert document(b'{"items": []}', JSON, LIMITS) == {"items": []}
    assert document(gzip.compress(b'{"items": [1]}'), GZIP, LIMITS) == {"items": [1]}


def test_multi_member_gzip_is_read() -> None:
    body = gzip.compress(b'{"items":') + gzip.compress(b" []}")
    assert document(body, GZIP, LIMITS) == {"items": []}


def test_gzip_bomb_is_refused_not_expanded() -> None:
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    assert len(bomb) < LIMITS.max_bytes * 10
    with pytest.raises(TooLarge):
        document(bomb, GZIP, BodyLimits(max_bytes=len(bomb), max_inflated=10_000))


@pytest.mark.parametrize(
    "body", [b"not gzip at all", gzip.compress(b'{"items": []}')[:-6], b"\x1f\x8b\x08\x00"]
)
def test_broken_gzip_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        document(body, GZIP, LIMITS)
    assert caught.value.details is not None and "decode" in caught.value.details


def test_empty_body_is_a_parse_error_without_details() -> None:
    with pytest.raises(ParseError) as caught:
        document(b"", JSON, LIMITS)
    assert caught.value.details is None


@pytest.mark.parametrize("body", [b"{", b"items", b'{"a": 1} trailing', b"[" * 100_000])
def test_bad_json_is_a_parse_error_with_decode_details(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        document(body, JSON, BodyLimits(max_bytes=200_000))
    assert caught.value.details is not None and caught.value.details["decode"]


def test_charset_of_the_content_type_is_used() -> None:
    assert charset("application/json; charset=ISO-8859-1") == "iso-8859-1"
    assert charset("application/json") == "utf-8"
    text = '{"items": [], "n": "é"}'.encode("latin-1")
    assert document(text, {"content-type": "application/json; charset=latin-1"}, LIMITS)["n"] == "é"
    with pytest.raises(ParseError):
        document(text, JSON, LIMITS)  # not UTF-8
    with pytest.raises(ParseError):
        document(b"{}", {"content-type": "application/json; charset=klingon"}, LIMITS)


def test_unknown_content_encoding_is_refused() -> None:
    with pytest.raises(ParseError):
        document(b"{}", {"content-encoding": "br"}, LIMITS)


def test_google_style_error_body() -> None:
    body = error_body(400, "parseError", "Parse Error", details={"decode": "x"}, why="bad")
    assert body == {
        "error": {
            "errors": [{"domain": "global", "reason": "parseError", "message": "bad"}],
            "code": 400,
            "message": "Parse Error",
            "details": {"decode": "x"},
        }
    }
    assert "details" not in error_body(503, "serviceUnavailable", "Service Unavailable")["error"]


def test_errors_survive_pickling() -> None:
    for exc in (
        ParseError("m", {"validation": {"a": "b"}}),
        LimitExceeded("m"),
        QueueDown("m", 7),
        Backlogged("m", 9),
    ):
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is type(exc) and str(again) == "m"
        assert getattr(again, "details", None) == getattr(exc, "details", None)
        assert getattr(again, "retry_after", None) == getattr(exc, "retry_after", None)


@pytest.mark.parametrize("key", ["test", "ABCD-1234", "a" * 40])
def test_valid_keys(key: str) -> None:
    assert is_valid(key)


@pytest.mark.parametrize("key", [None, "", "abc", "a" * 41, "has space", "ünï", "key_1"])
def test_malformed_keys_count_as_none(key: str | None) -> None:
    assert not is_valid(key)


def test_sampling_by_rate() -> None:
    assert keeps(100, 0.999999)
    assert keeps(50, 0.5) and not keeps(50, 0.51)
    assert not keeps(0, 0.0) and not keeps(None, 0.0)


def test_key_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = KeyCache(size=3, ttl=10, jitter=0, clock=lambda: now[0])
    key = ApiKey("abcd")
    cache.put("abcd", key)
    cache.put("none", None)
    assert cache.peek("abcd") == (True, key)
    assert cache.peek("none") == (True, None)  # unknown keys are remembered too
    assert cache.peek("else") == (False, None)
    now[0] = 10.0
    assert cache.peek("abcd") == (False, None)
    for i in range(10):
        cache.put(f"key{i}", None)
    assert sum(cache.peek(f"key{i}")[0] for i in range(10)) == 3


def test_listing_masks_keys() -> None:
    assert masked("secret-key-1") == "secr…"
    assert "secret" not in masked("secret")


def test_openapi_paths_describe_every_route_and_method() -> None:
    paths = openapi_paths()
    assert set(paths) == {"/v1/submit", "/v1/geosubmit", "/v2/geosubmit"}
    assert "204" in paths["/v1/submit"]["post"]["responses"]
    assert "200" in paths["/v2/geosubmit"]["post"]["responses"]
    for path in paths.values():
        assert set(path) == {"post", "get", "options"}
        assert {"400", "403", "413", "503"} <= set(path["post"]["responses"])


def test_a_failed_key_lookup_counts_as_no_key_and_is_not_cached() -> None:
    calls: list[str] = []

    def lookup(key: str) -> ApiKey | None:
        calls.append(key)
        if len(calls) == 1:
            raise DatabaseUnavailable("the database is away")
        return ApiKey(key, maxreq=3)

    intake = Intake(None, None, lookup)  # type: ignore[arg-type]  # only keys are asked
    assert asyncio.run(intake.key("some-key")) is None
    assert asyncio.run(intake.key("some-key")) == ApiKey("some-key", maxreq=3)
    assert asyncio.run(intake.key("some-key")) == ApiKey("some-key", maxreq=3)  # cached
    assert calls == ["some-key", "some-key"]
    assert asyncio.run(intake.key("bad key")) is None and len(calls) == 2  # never looked up


def test_outage_warnings_are_throttled(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    warn = Throttled(logging.getLogger("test.throttle"), seconds=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for _ in range(5):
            warn.warning("down: %s", "x")
        now[0] = 61.0
        warn.warning("down: %s", "y")
    assert [r.getMessage() for r in caplog.records] == ["down: x", "down: y (and 4 more like it)"]


@pytest.mark.parametrize("token", [False, True])
def test_the_paths_merged_into_the_service_document_are_valid_openapi(token: bool) -> None:
    from openapi_spec_validator import validate

    from sluice.service.openapi import document

    doc = document(token=token)
    merged = {**doc, "paths": {**doc["paths"], **openapi_paths()}}
    validate(merged)
    for path in openapi_paths().values():
        assert all(operation["security"] == [] for operation in path.values())
