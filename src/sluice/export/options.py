"""What an export feed declares (the project file's ``[exports.NAME]``, or a recipe's verbs):
plain dataclasses, importable without Arrow or a database driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sluice import schedule
from sluice.errors import ConfigError

#: How often the runtime plans an export feed's days when its declaration says nothing.
DEFAULT_SCHEDULE = "1d"


@dataclass(frozen=True)
class SourceOptions:
    """Where the source tables are: a database (None: sluice's own) and a schema."""

    url: str | None = None
    schema: str = "mozaggregator"


@dataclass(frozen=True)
class ExportDeclaration:
    """An export feed: a recipe's declaration (`kind`, an aggregate type), its source, where
    its files go (the Parquet folder, the lake folder, the warehouse file; no lake or no
    warehouse: the days are not published there), and the days the runtime plans: from
    `start` up to `end` excluded (no end: up to today, UTC, included; no start: only a
    backfill plans days)."""

    name: str
    recipe: str
    kind: str
    out_dir: Path
    source: SourceOptions = field(default_factory=SourceOptions)
    as_string: bool = False
    lake_dir: Path | None = None
    warehouse: Path | None = None
    start: date | None = None
    end: date | None = None
    schedule: str = DEFAULT_SCHEDULE

    def __post_init__(self) -> None:
        try:
            schedule.parse(self.schedule)
        except ConfigError as exc:
            raise ConfigError(f"export {self.name!r}: schedule: {exc}") from None
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError(
                f"export {self.name!r}: end {self.end} is not after start {self.start} "
                "(the end is excluded)"
            )

    def days_end(self) -> date:
        """The day after the last one the runtime plans."""
        return self.end or datetime.now(UTC).date() + timedelta(days=1)

    def options(self) -> dict[str, Any]:
        """The declaration as the ledger keeps it (``sluice.feeds.options``)."""
        return {
            "recipe": self.recipe,
            "type": self.kind,
            "out_dir": str(self.out_dir),
            "source_url": self.source.url,
            "source_schema": self.source.schema,
            "as_string": self.as_string,
            "lake_dir": None if self.lake_dir is None else str(self.lake_dir),
            "warehouse": None if self.warehouse is None else str(self.warehouse),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }

    @classmethod
    def from_options(cls, name: str, opts: dict[str, Any], schedule: str) -> ExportDeclaration:
        """A declaration read back from the ledger (`options`)."""

        def path(key: str) -> Path | None:
            value = opts.get(key)
            return Path(str(value)) if value else None

        def day(key: str) -> date | None:
            value = opts.get(key)
            return date.fromisoformat(str(value)) if value else None

        return cls(
            name=name,
            recipe=str(opts.get("recipe", "")),
            kind=str(opts.get("type", "")),
            out_dir=Path(str(opts.get("out_dir", "."))),
            source=SourceOptions(
                url=opts.get("source_url") or None,
                schema=str(opts.get("source_schema", SourceOptions().schema)),
            ),
            as_string=bool(opts.get("as_string", False)),
            lake_dir=path("lake_dir"),
            warehouse=path("warehouse"),
            start=day("start"),
            end=day("end"),
            schedule=schedule or DEFAULT_SCHEDULE,
        )
