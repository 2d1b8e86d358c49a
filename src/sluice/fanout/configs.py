"""Export configs: where the fan-out sends the accepted reports (`ExportConfig`), and the
table they live in (`ConfigStore`, the one class of the fan-out that runs SQL)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from sluice.db.queries import load as load_queries
from sluice.db.schema_store import SchemaStore
from sluice.errors import ConfigError

Q = load_queries("sluice.fanout", "configs.sql")

NAME = re.compile(r"[a-z0-9][-_a-z0-9]{0,39}")
#: The most reports of one batch (a batch is acknowledged by one script call).
MAX_BATCH = 5000


@dataclass(frozen=True)
class ExportConfig:
    """A row of ``export_config``. `kind` is the seed's ``schema`` column: the exporter."""

    name: str
    kind: str
    url: str | None = None
    batch: int = 100
    skip_keys: frozenset[str] = frozenset()
    skip_sources: frozenset[str] = frozenset()
    #: A batch is flushed once its oldest report waited this long, full or not.
    max_age_seconds: float = 3600.0
    #: Tries of a batch before it goes to the dead letters.
    max_attempts: int = 3

    def skips(self, api_key: str | None, source: str) -> bool:
        return (api_key is not None and api_key in self.skip_keys) or source in self.skip_sources

    def as_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        shown["skip_keys"] = sorted(self.skip_keys)
        shown["skip_sources"] = sorted(self.skip_sources)
        return shown


def parse_set(text: str | Iterable[str] | None) -> frozenset[str]:
    """A comma-separated set (the seed's column type): the empty string is the empty set."""
    if text is None:
        return frozenset()
    parts = text.split(",") if isinstance(text, str) else text
    return frozenset(p.strip() for p in parts if p.strip())


def check(config: ExportConfig, kinds: Iterable[str]) -> None:
    """Refuse a config no exporter can work, naming the field and why."""
    known = sorted(kinds)
    if NAME.fullmatch(config.name) is None:
        raise ConfigError(
            f"export name {config.name!r}: 1-40 characters of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    if config.kind not in known:
        raise ConfigError(
            f"export {config.name}: unknown kind {config.kind!r} (known: {', '.join(known)})"
        )
    if not 1 <= config.batch <= MAX_BATCH:
        raise ConfigError(f"export {config.name}: batch must be 1-{MAX_BATCH}, got {config.batch}")
    if config.max_age_seconds < 0:
        raise ConfigError(f"export {config.name}: max age must be 0 or more seconds")
    if config.max_attempts < 1:
        raise ConfigError(f"export {config.name}: max attempts must be 1 or more")
    if len(",".join(config.skip_keys)) > 1024 or len(",".join(config.skip_sources)) > 64:
        raise ConfigError(f"export {config.name}: skip lists too long (1024 / 64 characters)")


class ConfigStore(SchemaStore):
    """The ``export_config`` table of `schema`, over the database's pool."""

    queries = Q
    what = "export config"

    def list(self) -> list[ExportConfig]:
        return [_config(row) for row in self._run("list_configs", {})]

    def get(self, name: str) -> ExportConfig:
        for config in self.list():
            if config.name == name:
                return config
        known = ", ".join(c.name for c in self.list()) or "none"
        raise ConfigError(f"there is no export {name!r} (exports: {known})")

    def add(self, config: ExportConfig) -> None:
        if not self._run("add_config", _params(config)):
            raise ConfigError(f"export {config.name!r} exists already (exports update changes it)")

    def update(self, name: str, **changes: Any) -> ExportConfig:
        """Change fields of an export (not its name or kind: a new export is a new queue)."""
        unknown = set(changes) - {
            "url",
            "batch",
            "skip_keys",
            "skip_sources",
            "max_age_seconds",
            "max_attempts",
        }
        if unknown:
            raise ConfigError(f"cannot update {', '.join(sorted(unknown))} of an export")
        changed = replace(self.get(name), **changes)
        self._run("update_config", _params(changed))
        return changed

    def remove(self, name: str) -> None:
        if not self._run("remove_config", {"name": name}):
            raise ConfigError(f"there is no export {name!r}")


def _params(config: ExportConfig) -> dict[str, Any]:
    params = asdict(config)
    params["skip_keys"] = ",".join(sorted(config.skip_keys))
    params["skip_sources"] = ",".join(sorted(config.skip_sources))
    return params


def _config(row: dict[str, Any]) -> ExportConfig:
    return ExportConfig(
        name=row["name"],
        kind=row["kind"],
        url=row["url"],
        batch=int(row["batch"]),
        skip_keys=parse_set(row["skip_keys"]),
        skip_sources=parse_set(row["skip_sources"]),
        max_age_seconds=float(row["max_age_seconds"]),
        max_attempts=int(row["max_attempts"]),
    )
