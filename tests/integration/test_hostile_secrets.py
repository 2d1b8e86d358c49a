"""Hostile input, class 3: secrets never reach a message, a log line or the ledger."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from psycopg.conninfo import make_conninfo

from sluice.api import Engine, open_engine
from sluice.config import S3Options, Settings, load_settings
from sluice.db import Database, redact
from sluice.errors import ConfigError
from sluice.text import redact_secrets
from tests.integration.hostile import Conn, events_feed

SECRET = "Hunter2-s3cr3t"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"postgresql://u:{SECRET}@[::1:5432/x", "is not valid: end of string reached"),
        (f"mysql://u:{SECRET}@host/x", "is not a PostgreSQL URL (it starts with mysql://"),
        (f"postgresql://u:{SECRET}%zz@host/x", "is not valid: invalid percent-encoded token"),
        (f"postgresql://u:{SECRET}@host/x?nosuch=1", "is not valid: invalid URI query parameter"),
    ],
)
def test_a_malformed_database_url_is_one_line_without_its_password(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"SLUICE_DATABASE_URL": url})
    message = str(refused.value)
    assert SECRET not in message and fragment in message
    assert "u:***@" in message
    assert "\n" not in message


def test_redaction_covers_urls_and_connection_strings() -> None:
    assert redact(f"postgresql://u:{SECRET}@h/x") == "user=u password=*** dbname=x host=h"
    text = f"error for url (http://ak:{SECRET}@127.0.0.1:1/b?x) and password={SECRET} end"
    assert (
        redact_secrets(text) == "error for url (http://ak:***@127.0.0.1:1/b?x) and password=*** end"
    )


def test_credentials_in_the_s3_endpoint_never_reach_the_ledger_or_the_log(
    settings: Settings, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://sluice-key:{SECRET}@127.0.0.1:9"  # nothing listens on port 9
    s3 = S3Options(endpoint_url=endpoint, region="us-east-1")
    with caplog.at_level(logging.INFO), open_engine(settings=replace(settings, s3=s3)) as engine:
        report = engine.run_feeds([events_feed("s3://some-bucket/in")])

    [failure] = report.feed_errors
    assert failure["feed"] == "events" and SECRET not in failure["error"]
    [(error,)] = db.execute("SELECT error FROM sluice.runs").fetchall()
    assert error is not None and SECRET not in error
    assert SECRET not in caplog.text


def test_psql_gets_the_password_in_its_environment_not_its_command_line(
    engine: Engine, database_url: str
) -> None:
    with_password = Database(make_conninfo(database_url, password=SECRET))
    conninfo, env = with_password.client_connection()
    assert SECRET not in conninfo
    assert env == {"PGPASSWORD": SECRET}
    assert Database(database_url).client_connection()[1] == {}
