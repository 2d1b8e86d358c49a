"""The API keys of the Ichnaea recipe on a real PostgreSQL (migration 0007): add, list,
update, remove, and what the table refuses."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from sluice.db import Database, DatabaseOptions
from sluice.errors import ConfigError
from sluice.intake.keys import ApiKey
from sluice.recipes.ichnaea import api


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with Database.open(DatabaseOptions(url=database_url)) as opened:
        yield opened


def test_keys_added_listed_updated_removed(database: Database) -> None:
    api.add_key(database, "test-key", sample_submit=50, maxreq=10)
    api.add_key(database, "abcd")
    assert api.list_keys(database) == [
        ApiKey("abcd", maxreq=None, store_sample_submit=100, store_sample_locate=100),
        ApiKey("test-key", maxreq=10, store_sample_submit=50, store_sample_locate=100),
    ]
    api.update_key(database, "test-key", maxreq=None, store_sample_submit=0)
    found = api.keys(database).get("test-key")
    assert found == ApiKey("test-key", maxreq=None, store_sample_submit=0)
    api.update_key(database, "abcd", maxreq=5)  # the other columns stay
    assert api.keys(database).get("abcd") == ApiKey("abcd", maxreq=5)
    api.remove_key(database, "abcd")
    assert api.keys(database).get("abcd") is None


def test_refusals_never_quote_the_key(database: Database) -> None:
    api.add_key(database, "secret-key")
    with pytest.raises(ConfigError) as exists:
        api.add_key(database, "secret-key")
    with pytest.raises(ConfigError) as missing:
        api.remove_key(database, "other-secret")
    with pytest.raises(ConfigError) as malformed:
        api.add_key(database, "no spaces allowed")
    for caught in (exists, missing, malformed):
        assert "secret" not in str(caught.value) and "spaces" not in str(caught.value)


def test_the_table_keeps_the_seed_columns_and_no_sample_default(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'ichnaea' AND table_name = 'api_key'"
            )
        }
        assert {
            "valid_key",
            "maxreq",
            "allow_fallback",
            "allow_locate",
            "allow_region",
            "fallback_name",
            "fallback_schema",
            "fallback_url",
            "fallback_ratelimit",
            "fallback_ratelimit_interval",
            "fallback_cache_expire",
            "store_sample_locate",
            "store_sample_submit",
        } <= columns
        conn.execute("INSERT INTO ichnaea.api_key (valid_key) VALUES ('nulls')")
        row = conn.execute(
            "SELECT store_sample_submit FROM ichnaea.api_key WHERE valid_key = 'nulls'"
        ).fetchone()
        assert row == (None,)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO ichnaea.api_key (valid_key, store_sample_submit) VALUES ('ok-1', 101)"
            )
