"""Settings: the project file plus SLUICE_* variables, resolved once; every mistake is a
ConfigError that names the file (or variable) and the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.api import init_project
from sluice.config import (
    STARTER,
    LoadOptions,
    S3Options,
    Settings,
    find_project_file,
    load_settings,
)
from sluice.errors import ConfigError
from sluice.load.spec import Column, CsvFormat, Feed, Index, ServingView, TableSpec

FULL = """\
[project]
state_dir = "state"

[database]
url = "postgresql://file@db.example:5432/sluice"

[s3]
endpoint_url = "http://s3.example:9000"
region = "eu-west-1"

[load]
workers = 4
lease_seconds = 60
max_attempts = 7
stage_parallelism = 3
chunk_mb = 16
"""

FEED = """\
[feeds.events]
source = "data/incoming"
pattern = 'events-\\d+\\.csv'
table = "event_log"
schema = "raw"
columns = ["event_id bigint not null", "kind text not null", "payload jsonb", "at timestamptz"]
key = ["event_id", "kind"]
values = ["payload"]
mode = "upsert"
on_bad_rows = "reject"
max_rejects = 10
allow_empty = true
format = { header = true, delimiter = ";", quote = "'" }
serving = { view = "view_events", unique = ["event_id"], indexes = ["kind", "at"] }
constants = { region = "eu" }
"""

#: A valid feed, to which each mistake test adds or changes one line.
MINIMAL_FEED = """\
[feeds.sales]
source = "in"
columns = ["sku text not null", "qty integer"]
key = ["sku"]
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "sluice.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    return load_settings(write(folder, text), environ or {})


# -- resolution ---------------------------------------------------------------------------------


def test_defaults_without_a_project_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings(environ={})

    assert settings.project_file is None
    assert settings.database_url == ""
    assert settings.state_dir == (tmp_path / ".sluice").resolve()
    assert settings.s3 == S3Options(endpoint_url="", region="us-east-1")
    assert settings.load == LoadOptions(
        workers=1, lease_seconds=120, max_attempts=5, stage_parallelism=2, chunk_bytes=8 << 20
    )
    assert settings.feeds == {}


def test_project_file_values(tmp_path: Path) -> None:
    settings = load(tmp_path, FULL)

    assert settings.project_file == (tmp_path / "sluice.toml").resolve()
    assert settings.root == tmp_path.resolve()
    assert settings.state_dir == (tmp_path / "state").resolve()
    assert settings.database_url == "postgresql://file@db.example:5432/sluice"
    assert settings.s3 == S3Options(endpoint_url="http://s3.example:9000", region="eu-west-1")
    assert settings.load == LoadOptions(
        workers=4, lease_seconds=60, max_attempts=7, stage_parallelism=3, chunk_bytes=16 << 20
    )


def test_environment_overrides_the_project_file(tmp_path: Path) -> None:
    env = {
        "SLUICE_DATABASE_URL": "postgresql://env@127.0.0.1:5432/other",
        "SLUICE_STATE_DIR": str(tmp_path / "elsewhere"),
        "SLUICE_WORKERS": "8",
        "SLUICE_LEASE_SECONDS": "30",
        "SLUICE_MAX_ATTEMPTS": "2",
        "SLUICE_STAGE_PARALLELISM": "5",
        "SLUICE_CHUNK_MB": "1",
        "SLUICE_S3_ENDPOINT_URL": "http://127.0.0.1:9999",
        "SLUICE_S3_REGION": "ap-south-1",
    }

    settings = load(tmp_path, FULL, env)

    assert settings.database_url == "postgresql://env@127.0.0.1:5432/other"
    assert settings.state_dir == tmp_path / "elsewhere"
    assert settings.load == LoadOptions(
        workers=8, lease_seconds=30, max_attempts=2, stage_parallelism=5, chunk_bytes=1 << 20
    )
    assert settings.s3 == S3Options(endpoint_url="http://127.0.0.1:9999", region="ap-south-1")


def test_environment_overrides_only_what_it_names(tmp_path: Path) -> None:
    settings = load(tmp_path, FULL, {"SLUICE_WORKERS": "2"})

    assert settings.load.workers == 2
    assert settings.load.lease_seconds == 60
    assert settings.database_url == "postgresql://file@db.example:5432/sluice"


def test_process_environment_and_nearest_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, FULL)
    deeper = tmp_path / "a" / "b"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    monkeypatch.setenv("SLUICE_WORKERS", "6")
    monkeypatch.setenv("SLUICE_DATABASE_URL", "postgresql://proc@127.0.0.1/x")

    settings = load_settings()

    assert find_project_file() == (tmp_path / "sluice.toml").resolve()
    assert settings.project_file == (tmp_path / "sluice.toml").resolve()
    assert settings.load.workers == 6
    assert settings.load.max_attempts == 7  # from the file
    assert settings.database_url == "postgresql://proc@127.0.0.1/x"


def test_sluice_project_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "conf"
    other.mkdir()
    path = write(other, FULL)
    monkeypatch.chdir(tmp_path)

    settings = load_settings(environ={"SLUICE_PROJECT": str(path)})

    assert settings.project_file == path.resolve()
    assert settings.load.workers == 4


def test_a_named_project_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=re.escape(f"project file {missing} does not exist")):
        load_settings(missing, {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"SLUICE_PROJECT": str(missing)})


# -- mistakes -----------------------------------------------------------------------------------


def raises(folder: Path, text: str, *fragments: str, environ: dict[str, str] | None = None) -> str:
    """Load `text`; it must fail with a ConfigError whose message holds every fragment."""
    with pytest.raises(ConfigError) as caught:
        load(folder, text, environ)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    raises(tmp_path, "[load]\nworkers = \n", str(tmp_path / "sluice.toml"))


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = raises(tmp_path, "[loads]\nworkers = 2\n", str(tmp_path / "sluice.toml"), "'loads'")
    known = "broker, cubic, database, exports, feeds, ichnaea, load, project, s3, streams, syncs"
    assert f"known: {known})" in message


@pytest.mark.parametrize(
    ("section", "key"),
    [("load", "workres"), ("database", "uri"), ("s3", "endpoint"), ("project", "statedir")],
)
def test_unknown_key_in_a_section(tmp_path: Path, section: str, key: str) -> None:
    # A misspelt setting must not be silently ignored: the user would run with the default.
    raises(tmp_path, f"[{section}]\n{key} = 4\n", str(tmp_path / "sluice.toml"), repr(key))


def test_unknown_key_in_a_feed(tmp_path: Path) -> None:
    raises(
        tmp_path,
        MINIMAL_FEED + "colums = []\n",
        str(tmp_path / "sluice.toml"),
        "[feeds.sales]",
        "'colums'",
    )


def test_unknown_key_in_a_feed_format(tmp_path: Path) -> None:
    raises(
        tmp_path,
        MINIMAL_FEED + "format = { escape = '\\\\' }\n",
        "[feeds.sales] format",
        "'escape'",
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[load]\nworkers = '4'\n", "workers must be int, got '4'"),
        ("[load]\nworkers = true\n", "workers must be int, got True"),
        ("[load]\nlease_seconds = 1.5\n", "lease_seconds must be int, got 1.5"),
        ("[database]\nurl = 5\n", "url must be str, got 5"),
        ("[s3]\nregion = ['a']\n", "region must be str"),
        ("load = 3\n", "[load] must be a table"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, fragment: str) -> None:
    raises(tmp_path, text, str(tmp_path / "sluice.toml"), fragment)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("max_rejects = '10'", "max_rejects must be int"),
        ("allow_empty = 'yes'", "allow_empty must be bool"),
        ("key = 'sku'", "key must be a list of strings, got 'sku'"),
        ("format = { header = 1 }", "header must be bool, got 1"),
        ("constants = 3", "constants must be a table"),
    ],
)
def test_wrong_type_in_a_feed(tmp_path: Path, line: str, fragment: str) -> None:
    text = MINIMAL_FEED.replace('key = ["sku"]\n', "") + line + "\n"
    if not line.startswith("key"):
        text += 'key = ["sku"]\n'
    raises(tmp_path, text, str(tmp_path / "sluice.toml"), "[feeds.sales]", fragment)


def test_bad_mode(tmp_path: Path) -> None:
    raises(
        tmp_path,
        MINIMAL_FEED + 'mode = "merge"\n',
        str(tmp_path / "sluice.toml"),
        "[feeds.sales]",
        "mode must be one of append, upsert, replace, got 'merge'",
    )


def test_bad_on_bad_rows(tmp_path: Path) -> None:
    raises(
        tmp_path,
        MINIMAL_FEED + 'on_bad_rows = "skip"\n',
        "[feeds.sales]",
        "on_bad_rows must be one of fail_file, reject",
    )


def test_missing_source(tmp_path: Path) -> None:
    raises(
        tmp_path,
        MINIMAL_FEED.replace('source = "in"\n', ""),
        str(tmp_path / "sluice.toml"),
        "[feeds.sales]",
        "'source' is required",
    )


def test_feed_without_columns(tmp_path: Path) -> None:
    raises(
        tmp_path,
        '[feeds.sales]\nsource = "in"\nmode = "append"\n',
        "[feeds.sales]",
        "'columns' must list at least one",
    )


def test_a_feed_that_is_not_a_table(tmp_path: Path) -> None:
    raises(tmp_path, "[feeds]\nsales = 3\n", "[feeds.sales]", "expected a table")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ('columns = ["Sku text", "qty integer"]', "'Sku'"),
        ('columns = ["sku text", "qty money"]', "'money'"),
        ("format = { delimiter = ';;' }", "delimiter"),
        ("pattern = 'x('", "pattern"),
    ],
)
def test_a_bad_declaration_in_a_feed_names_the_file_and_the_feed(
    tmp_path: Path, change: str, fragment: str
) -> None:
    # In a project file with many feeds, the message must say which one to fix.
    key = change.split(" = ")[0]
    lines = [ln for ln in MINIMAL_FEED.splitlines() if not ln.startswith(f"{key} =")]
    raises(
        tmp_path,
        "\n".join([*lines, change]) + "\n",
        str(tmp_path / "sluice.toml"),
        "[feeds.sales]",
        fragment,
    )


@pytest.mark.parametrize("key", ["workers", "lease_seconds", "max_attempts", "chunk_mb"])
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_load_setting(tmp_path: Path, key: str, value: int) -> None:
    raises(
        tmp_path,
        f"[load]\n{key} = {value}\n",
        str(tmp_path / "sluice.toml"),
        f"{key} must be a positive integer, got {value}",
    )


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SLUICE_WORKERS", "abc", "SLUICE_WORKERS must be a positive integer, got 'abc'"),
        ("SLUICE_WORKERS", "0", "SLUICE_WORKERS"),
        ("SLUICE_WORKERS", "-1", "SLUICE_WORKERS"),
        ("SLUICE_LEASE_SECONDS", "2.5", "SLUICE_LEASE_SECONDS must be a positive integer"),
        ("SLUICE_MAX_ATTEMPTS", "", "SLUICE_MAX_ATTEMPTS must be a positive integer"),
        ("SLUICE_CHUNK_MB", "8MB", "SLUICE_CHUNK_MB must be a positive integer, got '8MB'"),
    ],
)
def test_bad_environment_value(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    message = raises(tmp_path, FULL, fragment, environ={name: value})
    assert str(tmp_path / "sluice.toml") not in message  # the variable is at fault, not the file


# -- feeds ---------------------------------------------------------------------------------------


def test_a_feed_section_becomes_a_feed_with_its_table(tmp_path: Path) -> None:
    settings = load(tmp_path, FULL + "\n" + FEED)

    assert list(settings.feeds) == ["events"]
    assert settings.feeds["events"] == Feed(
        name="events",
        table=TableSpec(
            name="event_log",
            schema="raw",
            columns=(
                Column("event_id", "bigint", nullable=False),
                Column("kind", "text", nullable=False),
                Column("payload", "jsonb"),
                Column("at", "timestamptz"),
            ),
            key=("event_id", "kind"),
            values=("payload",),
            mode="upsert",
            constants=(Column("region", "text", nullable=False),),
            on_bad_rows="reject",
            max_rejects=10,
            allow_empty=True,
            format=CsvFormat(delimiter=";", quote="'", header=True),
            serving=ServingView(
                name="view_events",
                indexes=(
                    Index(("event_id",), unique=True),
                    Index(("kind",)),
                    Index(("at",)),
                ),
            ),
        ),
        source=str((tmp_path / "data" / "incoming").resolve()),
        pattern=r"events-\d+\.csv",
        constants={"region": "eu"},
    )


def test_feed_defaults(tmp_path: Path) -> None:
    feed = load(tmp_path, MINIMAL_FEED).feeds["sales"]

    assert feed.pattern == r".*\.csv(\.gz)?"
    assert feed.source == str((tmp_path / "in").resolve())
    assert feed.constants == {}
    spec = feed.table
    assert (spec.name, spec.schema, spec.mode, spec.on_bad_rows) == (
        "sales",
        "public",
        "upsert",
        "fail_file",
    )
    assert spec.key == ("sku",)
    assert spec.value_columns == ("qty",)
    assert spec.format == CsvFormat(delimiter=",", quote='"', header=False)
    assert spec.serving is None
    assert (spec.max_rejects, spec.allow_empty) == (1000, False)


@pytest.mark.parametrize("source", ["s3://bucket/in", "gs://bucket/in", "/absolute/in"])
def test_urls_and_absolute_sources_are_kept_as_written(tmp_path: Path, source: str) -> None:
    text = MINIMAL_FEED.replace('source = "in"', f'source = "{source}"')
    assert load(tmp_path, text).feeds["sales"].source == source


def test_serving_without_unique_columns_is_unique_on_id(tmp_path: Path) -> None:
    feed = load(tmp_path, MINIMAL_FEED + 'serving = { view = "view_sales" }\n').feeds["sales"]

    assert feed.table.serving == ServingView(
        name="view_sales", indexes=(Index(("id",), unique=True),)
    )


# -- the starter file ----------------------------------------------------------------------------


def test_the_starter_file_parses_to_the_defaults(tmp_path: Path) -> None:
    path = init_project(tmp_path)

    assert path == tmp_path / "sluice.toml"
    assert path.read_text(encoding="utf-8") == STARTER
    settings = load_settings(path, {})
    assert settings.load == LoadOptions()
    assert settings.s3 == S3Options()
    assert settings.database_url == ""
    assert settings.feeds == {}
    assert settings.state_dir == (tmp_path / ".sluice").resolve()


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    path = init_project(tmp_path)
    path.write_text("# mine\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="already exists"):
        init_project(tmp_path)
    assert path.read_text(encoding="utf-8") == "# mine\n"

    init_project(tmp_path, force=True)
    assert path.read_text(encoding="utf-8") == STARTER


def test_the_starter_file_uncommented_is_valid_and_shows_the_true_defaults(
    tmp_path: Path,
) -> None:
    # Uncomment every setting and section line: what a user does to start editing.
    setting = re.compile(r"^# (\[[\w.]+\]|\w+ = .*)$")
    text = "\n".join(
        setting.sub(r"\1", line) if setting.match(line) else line for line in STARTER.splitlines()
    )
    assert "\n[feeds.events]\n" in text and "\nworkers = 1 " in text

    settings = load(tmp_path, text)

    assert settings.load == LoadOptions()
    assert settings.s3 == S3Options(endpoint_url="http://127.0.0.1:9000", region="us-east-1")
    assert settings.database_url == "postgresql://user@127.0.0.1:5432/sluice"
    assert settings.state_dir == (tmp_path / ".sluice").resolve()
    events = settings.feeds["events"]
    assert events.source == str((tmp_path / "data" / "incoming").resolve())
    assert re.fullmatch(events.pattern, "events-42.csv.gz")
    assert not re.fullmatch(events.pattern, "events-42.csv.rejects-7.csv")
    spec = events.table
    assert spec.name == "events"
    assert spec.file_columns[1:] == ("kind", "payload")
    assert spec.key == (spec.file_columns[0], "kind")
    assert (spec.mode, spec.on_bad_rows, spec.format) == ("upsert", "fail_file", CsvFormat())
    assert spec.serving is not None and spec.serving.name == "view_events"
    assert Index(("kind",)) in spec.serving.indexes
