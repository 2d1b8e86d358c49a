"""Hostile input, class 4 (configuration): a project file or a value that would fail later, or
as a traceback, is refused when it is read, in one line naming the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.api import init_project
from sluice.config import load_settings
from sluice.errors import ConfigError
from sluice.load.spec import Column, CsvFormat, Index, ServingView, TableSpec
from sluice.recipes.glam.api import generate

FEED = """
[feeds.sales]
source = "in"
table = "sales"
columns = ["sale_id bigint not null", "amount numeric"]
key = ["sale_id"]
"""


def refused(tmp_path: Path, text: str | bytes, environ: dict[str, str] | None = None) -> str:
    project = tmp_path / "sluice.toml"
    project.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as raised:
        load_settings(project, environ=environ or {})
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_project_file_that_is_not_utf8(tmp_path: Path) -> None:
    message = refused(tmp_path, b"[load]\nworkers = 2 # caf\xe9\n")
    assert message == f"{tmp_path / 'sluice.toml'}: not UTF-8 text (byte 24 is b'\\xe9')"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[load]\nlease_seconds = 99999999999999\n", "lease_seconds must be at most 86,400"),
        ("[load]\nchunk_mb = 99999999999\n", "chunk_mb must be at most 1,024"),
        ("[load]\nworkers = 1000\n", "workers must be at most 64"),
        (FEED + "max_rejects = -1\n", "max_rejects must be at least 0, got -1"),
        (FEED + "max_active = 0\n", "max_active must be within 1..1000, got 0"),
        (FEED + 'schedule = "often"\n', "schedule 'often' is neither an interval"),
        (FEED + 'pattern = "(a)\\\\1"\n', "backreferences and lookaround are not supported"),
    ],
)
def test_numbers_and_patterns_out_of_bounds(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in refused(tmp_path, text)


def test_huge_environment_values(tmp_path: Path) -> None:
    message = refused(tmp_path, "", {"SLUICE_LEASE_SECONDS": "99999999999999"})
    assert (
        message == "SLUICE_LEASE_SECONDS: lease_seconds must be at most 86,400, got 99999999999999"
    )


def test_a_column_named_like_an_internal_one() -> None:
    with pytest.raises(ConfigError, match="names starting with 'sluice_' are sluice's own"):
        Column("sluice_tid", "bigint")


def test_a_serving_view_named_like_its_table() -> None:
    with pytest.raises(ConfigError, match="its serving view needs a name of its own"):
        TableSpec(
            name="sales",
            columns=(Column("sale_id", "bigint"),),
            key=("sale_id",),
            serving=ServingView("sales", (Index(("id",), unique=True),)),
        )


def test_a_multibyte_delimiter() -> None:
    with pytest.raises(ConfigError, match="must be one single-byte character, got 'é'"):
        CsvFormat(delimiter="é")


@pytest.mark.parametrize(
    ("declared", "fragment"),
    [
        ("varchar(99999999999999999999)", "must have a length within 1..10,485,760"),
        ("varchar(0)", "must have a length within"),
        ("numeric(2000, 2)", "must have a precision within 1..1000"),
        ("numeric(5, 9)", "scale no larger than it"),
    ],
)
def test_type_sizes_postgresql_refuses(declared: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Column("amount", declared)
    assert fragment in str(raised.value)


def test_paths_that_cannot_be_written_are_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain-file"
    plain.write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        init_project(plain)
    with pytest.raises(ConfigError, match="cannot create this folder"):
        generate("desktop", "nightly", rows=10, shards=1, out=str(plain / "below"))
