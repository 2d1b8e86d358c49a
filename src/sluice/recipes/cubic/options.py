"""The Cubic recipe's settings (the ``[cubic]`` section of ``sluice.toml``), light to import:
the settings module builds them without loading the routing or lake machinery.

The four locations are store URLs with a prefix (``s3://bucket/prefix`` or a folder). Left
unset, each is a folder under the state directory (``<state_dir>/cubic/incoming`` ...), so a
fresh project routes between local folders. ``[cubic.tables.NAME]`` declares tables as
``sluice cubic tables add`` does; ``[cubic.dmap]`` belongs to the DMAP fetcher and is left to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import tomlread
from sluice.errors import ConfigError

#: The environment variables that override each location.
LOCATION_ENV = {
    "incoming": "SLUICE_CUBIC_INCOMING",
    "archive": "SLUICE_CUBIC_ARCHIVE",
    "error": "SLUICE_CUBIC_ERROR",
    "lake": "SLUICE_CUBIC_LAKE",
}
#: Keys of ``[cubic]`` that other parts of the recipe own (the DMAP fetcher).
FOREIGN_KEYS = frozenset({"dmap"})
#: Table kinds.
KINDS = ("ods", "dmap", "stream")
DEFAULT_SNAPSHOT_KEY = "LOAD00000001.csv.gz"


@dataclass(frozen=True)
class TableDeclaration:
    """One Cubic table as ``sluice cubic tables add`` (or ``[cubic.tables.NAME]``) declares it."""

    name: str
    prefix: str
    kind: str = "ods"
    snapshot_key: str = DEFAULT_SNAPSHOT_KEY
    raw: bool = True
    current_view: bool = False
    #: Write the files to the lake; False routes them only (Incoming → Archive / Error), as
    #: the seed has done since it stopped converting.
    lake: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"cubic table {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}"
            )
        if not self.prefix.endswith("/") or self.prefix.startswith("/"):
            raise ConfigError(
                f"cubic table {self.name!r}: the prefix {self.prefix!r} must be relative to "
                "Incoming and end with '/' (cubic/ods_qlik/EDW.SAMPLE/)"
            )
        if self.prefix.rstrip("/").endswith("__ct"):
            raise ConfigError(
                f"cubic table {self.name!r}: register the table's own prefix, not its __ct "
                "sibling (both map to the same table)"
            )
        if self.current_view and self.kind != "ods":
            raise ConfigError(f"cubic table {self.name!r}: only ODS tables have a current view")

    def options(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "snapshot_key": self.snapshot_key,
            "raw": self.raw,
            "current_view": self.current_view,
            "lake": self.lake,
        }

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> TableDeclaration:
        return cls(
            name=name,
            prefix=str(options.get("prefix", "")),
            kind=str(options.get("kind", "ods")),
            snapshot_key=str(options.get("snapshot_key") or DEFAULT_SNAPSHOT_KEY),
            raw=bool(options.get("raw", True)),
            current_view=bool(options.get("current_view", False)),
            lake=bool(options.get("lake", True)),
        )


@dataclass(frozen=True)
class CubicOptions:
    """Where Cubic files arrive, go and end up: store URLs with prefixes."""

    incoming: str = ""
    archive: str = ""
    error: str = ""
    lake: str = ""
    #: An S3-compatible endpoint for ``s3://`` locations (empty: AWS itself).
    endpoint_url: str = ""
    #: Most objects one scan of a table lists; the next scan resumes after the last one.
    listing_cap: int = 500
    tables: Mapping[str, TableDeclaration] = field(default_factory=dict)

    def resolved(self, state_dir: Path) -> CubicOptions:
        """These options with every unset location a folder under `state_dir`."""
        base = state_dir / "cubic"
        return CubicOptions(
            incoming=self.incoming or str(base / "incoming"),
            archive=self.archive or str(base / "archive"),
            error=self.error or str(base / "error"),
            lake=self.lake or str(base / "lake"),
            endpoint_url=self.endpoint_url,
            listing_cap=self.listing_cap,
            tables=self.tables,
        )


def parse_cubic(
    section: Mapping[str, Any], env: Mapping[str, str], state_dir: Path, root: Path, where: str
) -> CubicOptions:
    """``[cubic]`` plus ``SLUICE_CUBIC_*``, with unset locations under `state_dir` and
    relative folders resolved against `root` (the project's folder)."""
    where = f"{where} [cubic]"
    known = {*LOCATION_ENV, "endpoint_url", "listing_cap", "tables"}
    unknown = sorted(set(section) - known - FOREIGN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    values: dict[str, str] = {}
    for name, variable in LOCATION_ENV.items():
        value = env.get(variable) or section.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {name} must be a store URL, got {value!r}")
        if value and not value.startswith(("s3://", "file://", "/")) and "://" not in value:
            value = str((root / value).resolve())
        values[name] = value
    endpoint = env.get("SLUICE_CUBIC_ENDPOINT_URL") or section.get("endpoint_url", "")
    cap = section.get("listing_cap", 500)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise ConfigError(f"{where}: listing_cap must be a whole number >= 1, got {cap!r}")
    tables = _tables(section.get("tables", {}), where)
    return CubicOptions(
        endpoint_url=str(endpoint), listing_cap=cap, tables=tables, **values
    ).resolved(state_dir)


def _tables(raw: Any, where: str) -> dict[str, TableDeclaration]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [cubic.tables] must be a table")
    found: dict[str, TableDeclaration] = {}
    allowed = {"prefix", "kind", "snapshot_key", "raw", "current_view", "lake"}
    for name, body in raw.items():
        here = f"{where} [cubic.tables.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{here}: must be a table")
        tomlread.only_keys(body, allowed, here)
        if "prefix" not in body:
            raise ConfigError(f"{here}: prefix is required")
        try:
            found[name] = TableDeclaration.from_options(name, body)
        except ConfigError as exc:
            raise ConfigError(f"{here}: {exc}") from None
    return found
