"""Typed reads of the tables of a TOML file: each value checked for its kind (and numbers for
their bounds), each error naming where the value was read (a file and its section, or an
environment variable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sluice.errors import ConfigError

T = TypeVar("T")


def section(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def only_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )


def parsed(raw: str, kind: type, where: str) -> Any:
    if kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{where} must be a whole number, got {raw[:40]!r}") from None


def get(data: dict[str, Any], key: str, kind: type[T], default: T, where: str) -> T:
    if key not in data:
        return default
    value = data[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value


def words(data: dict[str, Any], key: str, where: str) -> list[str]:
    """A list of strings."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
    return value


def table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table, got {value!r}")
    return value


#: The smallest and largest value of each numeric setting: a value outside is a typo, and
#: would fail later in a worse way (threads that cannot sleep that long, chunks that cannot be
#: allocated).
BOUNDS: dict[str, tuple[int, int]] = {
    "workers": (1, 64),
    "lease_seconds": (1, 86_400),
    "max_attempts": (1, 100),
    "stage_parallelism": (1, 32),
    "chunk_mb": (1, 1024),
    "max_line_mb": (1, 1024),
    "max_rejects": (0, 1_000_000_000),
}


def within(value: int, key: str, where: str) -> int:
    low, high = BOUNDS[key]
    if value < low:
        kind = "a positive integer" if low == 1 else f"at least {low}"
        raise ConfigError(f"{where}: {key} must be {kind}, got {value!r}")
    if value > high:
        raise ConfigError(f"{where}: {key} must be at most {high:,}, got {value!r}")
    return value


def bounded(
    env: Mapping[str, str], section: dict[str, Any], key: str, default: int, where: str
) -> int:
    """An integer setting from the environment (``SLUICE_<KEY>``) or the file, within its
    bounds."""
    env_key = f"SLUICE_{key.upper()}"
    if env_key in env:
        raw: Any = env[env_key]
        where = env_key
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{env_key} must be a positive integer, got {raw!r}") from None
        if value < 1:
            raise ConfigError(f"{env_key} must be a positive integer, got {raw!r}")
        return within(value, key, env_key)
    return within(get(section, key, int, default, where), key, where)
