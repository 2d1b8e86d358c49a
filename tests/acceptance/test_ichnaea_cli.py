"""``sluice ichnaea keys`` and ``sluice ichnaea status`` as a person and a script use them."""

from __future__ import annotations

import json
import uuid

from tests.acceptance.conftest import Sluice, describe, query
from tests.acceptance.test_ichnaea_submit import ok, run_ichnaea

SECRET = "s3cret-key-0042"


def test_keys_add_list_update_remove(sluice: Sluice, redis_url: str) -> None:
    env = {"SLUICE_REDIS_URL": redis_url}
    added = ok(sluice, "keys", "add", SECRET, "--sample-submit", "25", "--maxreq", "9", env=env)
    assert "25% of submissions kept, daily limit 9" in added.stdout
    assert SECRET not in added.stdout
    ok(sluice, "keys", "add", "other", env=env)
    listed = json.loads(ok(sluice, "keys", "list", "--json", env=env).stdout)
    assert listed == [
        {"key": "othe…", "maxreq": None, "store_sample_submit": 100, "store_sample_locate": 100},
        {"key": "s3cr…", "maxreq": 9, "store_sample_submit": 25, "store_sample_locate": 100},
    ]
    revealed = ok(sluice, "keys", "list", "--reveal", env=env).stdout
    assert SECRET in revealed and "unlimited" in revealed
    ok(sluice, "keys", "update", SECRET, "--sample-submit", "0", env=env)
    rows = query(
        sluice.database_url or "",
        "SELECT store_sample_submit, maxreq FROM ichnaea.api_key WHERE valid_key = %s",
        [SECRET],
    )
    assert rows == [(0, 9)]
    ok(sluice, "keys", "remove", "other", env=env)
    assert [k["key"] for k in json.loads(ok(sluice, "keys", "list", "--json", env=env).stdout)] == [
        "s3cr…"
    ]


def test_key_errors_are_usage_errors_without_the_key(sluice: Sluice, redis_url: str) -> None:
    env = {"SLUICE_REDIS_URL": redis_url}
    ok(sluice, "keys", "add", SECRET, env=env)
    for args in (
        ("keys", "add", SECRET),
        ("keys", "remove", "s3cret-missing"),
        ("keys", "update", "s3cret-missing", "--maxreq", "1"),
        ("keys", "add", "s3cret with spaces"),
        ("keys", "update", SECRET),
    ):
        result = run_ichnaea(sluice, *args, env=env)
        assert result.returncode == 2, describe(result)
        assert "s3cret" not in result.stderr and "s3cret" not in result.stdout, describe(result)
    result = run_ichnaea(sluice, "keys", "add", "abcd", "--sample-submit", "101", env=env)
    assert result.returncode == 2, describe(result)


def test_status_of_an_empty_intake(sluice: Sluice, redis_url: str) -> None:
    env = {"SLUICE_REDIS_URL": redis_url, "SLUICE_ICHNAEA_REDIS_PREFIX": f"t:{uuid.uuid4().hex}"}
    report = json.loads(ok(sluice, "status", "--json", env=env).stdout)
    assert report == {
        "depth": 0,
        "oldest_age_seconds": None,
        "requests": 0,
        "accepted": 0,
        "sampled_out": 0,
        "dropped": {},
        "exports": [],
        "warning": "no export config: the intake keeps its 0 reports until one is added "
        "(sluice ichnaea exports add)",
    }
    text = ok(sluice, "status", env=env).stdout
    assert "depth" in text and "accepted" in text
    assert "warning: no export config" in text


def test_exports_list_hides_the_secrets_of_urls(sluice: Sluice, redis_url: str) -> None:
    env = {"SLUICE_REDIS_URL": redis_url}
    url = f"https://user:pa55@geo.example/v2/geosubmit?key={SECRET}&x=1"
    ok(sluice, "exports", "add", "geo", "--kind", "geosubmit", "--url", url, env=env)
    listed = json.loads(ok(sluice, "exports", "list", "--json", env=env).stdout)
    assert [e["url"] for e in listed] == ["https://user:***@geo.example/v2/geosubmit?key=***&x=1"]
    assert SECRET not in ok(sluice, "exports", "list", env=env).stdout
    revealed = json.loads(ok(sluice, "exports", "list", "--json", "--reveal", env=env).stdout)
    assert [e["url"] for e in revealed] == [url]
