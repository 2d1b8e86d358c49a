"""The public names of the package are pinned: adding or removing one is a decision."""

from __future__ import annotations

import sluice

PUBLIC = [
    "BadInputError",
    "Column",
    "ConfigError",
    "CsvFormat",
    "Engine",
    "Feed",
    "Index",
    "LoadReport",
    "RunReport",
    "ServingView",
    "Settings",
    "SluiceError",
    "Status",
    "TableSpec",
    "TerminalError",
    "TransientError",
    "__version__",
    "init_project",
    "load_settings",
    "open_engine",
]


def test_all_is_pinned() -> None:
    assert sluice.__all__ == PUBLIC


def test_every_public_name_exists() -> None:
    missing = [name for name in sluice.__all__ if not hasattr(sluice, name)]
    assert missing == []
