"""The public Python API. The CLI (`sluice.cli`) is a thin shell over these functions, verb for
verb; so are the recipe commands (`sluice.recipes.*.api`).

    >>> from sluice import open_engine
    >>> with open_engine() as engine:          # sluice.toml + SLUICE_* settings
    ...     report = engine.run_feeds(engine.feeds())
    ...     print(engine.status().loads)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from sluice.config import PROJECT_FILE, STARTER, Settings, load_settings
from sluice.db import Database
from sluice.errors import ConfigError
from sluice.ledger.repository import Ledger
from sluice.load.spec import Feed
from sluice.runtime.progress import Progress
from sluice.runtime.runner import Runner, RunReport
from sluice.status import StatusReport, read_status

log = logging.getLogger(__name__)


def init_project(directory: Path | None = None, *, force: bool = False) -> Path:
    """Write a commented starter ``sluice.toml`` in `directory`; return its path."""
    target = (directory or Path.cwd()) / PROJECT_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists (use --force to overwrite it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(STARTER, encoding="utf-8")
    return target


class Engine:
    """A configured sluice: settings plus an open database (embedded or not)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    # -- feeds and runs ---------------------------------------------------------------------

    def feeds(self, names: Sequence[str] | None = None) -> list[Feed]:
        """Feeds declared in the project file, all of them or those named."""
        declared = self.settings.feeds
        if not names:
            if not declared:
                where = self.settings.project_file or "no sluice.toml found"
                raise ConfigError(f"no feeds are declared ({where}); see 'sluice init'")
            return list(declared.values())
        missing = [n for n in names if n not in declared]
        if missing:
            known = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"unknown feed {missing[0]!r} (declared: {known})")
        return [declared[n] for n in names]

    def run_feeds(
        self,
        feeds: Sequence[Feed],
        *,
        command: str = "import",
        progress: Progress | None = None,
        refresh: bool = True,
    ) -> RunReport:
        """Discover and load every new object version of `feeds`, then refresh the serving
        views whose tables changed. Loads that fail end errored on the ledger; the run goes on."""
        return Runner(self.db, self.settings, progress).run(feeds, command=command, refresh=refresh)

    def refresh_views(self, feeds: Sequence[Feed]) -> RunReport:
        """Refresh the stale serving views of `feeds` without discovering or loading."""
        return Runner(self.db, self.settings).run(feeds, command="refresh", load=False)

    # -- the ledger -------------------------------------------------------------------------

    def status(self, *, errors: int = 10, runs: int = 5) -> StatusReport:
        with self.db.connection(autocommit=True) as conn:
            return read_status(Ledger(conn), errors=errors, runs=runs)

    def retry(
        self, *, feeds: Sequence[str] | None = None, load_ids: Sequence[int] | None = None
    ) -> list[int]:
        """Put errored loads back in the queue (after the input was fixed); return their ids."""
        with self.db.connection(autocommit=True) as conn:
            return Ledger(conn).retry_errored(table_names=feeds, load_ids=load_ids)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_engine(
    project: Path | None = None, *, settings: Settings | None = None, upgrade: bool = True
) -> Engine:
    """Resolve settings, open the database (starting the embedded server when no URL is
    configured) and bring the ledger schema up to date."""
    resolved = settings or load_settings(project)
    return Engine(resolved, Database.open(resolved, upgrade=upgrade))
