"""sluice: a data-ingestion engine with a load ledger.

The public API::

    from sluice import open_engine
    with open_engine() as engine:
        report = engine.run_feeds(engine.feeds())
"""

from __future__ import annotations

from sluice.api import Engine, init_project, open_engine
from sluice.config import Settings, load_settings
from sluice.errors import (
    BadInputError,
    ConfigError,
    SluiceError,
    TerminalError,
    TransientError,
)
from sluice.ledger.states import Status
from sluice.load.spec import Column, CsvFormat, Feed, Index, ServingView, TableSpec
from sluice.runtime.report import LoadReport, RunReport

__version__ = "0.1.0"

__all__ = [
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
