"""The Cubic DMAP configuration of the API fetcher (``[cubic.dmap]``), light to import: the
settings module builds it without loading HTTP machinery.

DMAP is Cubic's dataset-listing REST API (../shared/reference/notes/seeds-cubic.md §12). Each
feed is an endpoint below `base_url`; the API key is chosen by the endpoint's path prefix and
sent as the ``apikey`` header only, so no URL sluice logs or raises ever holds it. Each
dataset's file goes to Incoming as ``cubic/dmap/<type>/<dataset_id>.csv.gz``, where `type` is
the result's ``id`` (``agg_sample``) and `dataset_id` its ``dataset_id``
(``agg_sample_20220517``), as the seed names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice import tomlread
from sluice.errors import ConfigError

#: The settings the environment overrides, and its names for them.
DMAP_ENV = {
    "base_url": "SLUICE_CUBIC_DMAP_BASE_URL",
    "controlled_key": "SLUICE_CUBIC_DMAP_CONTROLLED_KEY",
    "public_key": "SLUICE_CUBIC_DMAP_PUBLIC_KEY",
}
#: The path prefixes of the two kinds of endpoint, and the key each takes.
CONTROLLED_PREFIX = "/datasetcontrolleduserapi"
PUBLIC_PREFIX = "/datasetpublicusersapi"
#: Where dataset files go, below the Incoming location.
KEY_PREFIX = "cubic/dmap/"
#: When ``sluice run`` fetches every feed: daily after the Cubic exports land (the seed).
DEFAULT_SCHEDULE = "0 15 * * *"


@dataclass(frozen=True)
class DmapOptions:
    """Where the DMAP API is and the keys it takes. `repr` never shows a key."""

    base_url: str = ""
    controlled_key: str = ""
    public_key: str = ""
    #: When ``sluice run`` fetches every feed (an interval or a cron expression, UTC).
    schedule: str = DEFAULT_SCHEDULE
    #: Attempts of one request (an API query, a file download) before its dataset fails.
    attempts: int = 5
    #: Seconds before the first retry; doubled each time, at most 60 s.
    backoff_seconds: float = 1.0
    #: Seconds a request may wait for a connection or a byte.
    timeout_seconds: float = 60.0

    def __repr__(self) -> str:
        return (
            f"DmapOptions(base_url={self.base_url!r}, controlled_key={_shown(self.controlled_key)},"
            f" public_key={_shown(self.public_key)}, schedule={self.schedule!r})"
        )

    @property
    def configured(self) -> bool:
        """Whether fetches can run: a base URL and both keys (the seed's rule)."""
        return bool(self.base_url and self.controlled_key and self.public_key)

    def require(self) -> None:
        missing = [
            DMAP_ENV[name]
            for name in ("base_url", "controlled_key", "public_key")
            if not getattr(self, name)
        ]
        if missing:
            raise ConfigError(
                "DMAP fetches need [cubic.dmap] base_url, controlled_key and public_key "
                f"(missing: {', '.join(missing)})"
            )

    def headers_for(self, relative_url: str) -> dict[str, str]:
        """The header carrying the key of the endpoint `relative_url` (by path prefix)."""
        if relative_url.startswith(CONTROLLED_PREFIX):
            return {"apikey": self.controlled_key}
        if relative_url.startswith(PUBLIC_PREFIX):
            return {"apikey": self.public_key}
        raise ConfigError(
            f"DMAP feed {relative_url!r}: its path starts with neither {CONTROLLED_PREFIX} nor "
            f"{PUBLIC_PREFIX}, so no key applies"
        )


def object_key(kind: str, dataset_id: str) -> str:
    """Where a dataset's file goes, below the Incoming location."""
    return f"{KEY_PREFIX}{kind}/{dataset_id}.csv.gz"


def check_relative_url(relative_url: str) -> str:
    """A feed's endpoint as given to ``feeds add``: a path below the base URL."""
    if not relative_url.startswith("/") or "://" in relative_url or "?" in relative_url:
        raise ConfigError(
            f"a DMAP feed is a path below the base URL such as "
            f"{CONTROLLED_PREFIX}/datasets/sample, got {relative_url[:80]!r}"
        )
    DmapOptions(controlled_key="x", public_key="x").headers_for(relative_url)
    return relative_url


def parse_dmap(section: Mapping[str, Any], env: Mapping[str, str], where: str) -> DmapOptions:
    """``[cubic.dmap]`` plus ``SLUICE_CUBIC_DMAP_*``."""
    where = f"{where} [cubic.dmap]"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: must be a table")
    defaults = DmapOptions()
    known = {
        "base_url",
        "controlled_key",
        "public_key",
        "schedule",
        "attempts",
        "backoff_seconds",
        "timeout_seconds",
    }
    tomlread.only_keys(section, known, where)
    text: dict[str, str] = {}
    for name in ("base_url", "controlled_key", "public_key", "schedule"):
        value = env.get(DMAP_ENV.get(name, "")) or section.get(name, getattr(defaults, name))
        if not isinstance(value, str):
            # Never echo the value: it may be a key.
            raise ConfigError(f"{where}: {name} must be a string")
        text[name] = value.strip()
    base = text["base_url"].rstrip("/")
    if base and not base.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: base_url must be an http(s) URL, got {base[:80]!r}")
    attempts = section.get("attempts", defaults.attempts)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
        raise ConfigError(f"{where}: attempts must be a whole number from 1 to 20")
    numbers: dict[str, float] = {}
    for name in ("backoff_seconds", "timeout_seconds"):
        value = section.get(name, getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: {name} must be a number of seconds >= 0")
        numbers[name] = float(value)
    from sluice import schedule  # light; kept local so this module imports nothing heavy

    schedule.parse(text["schedule"])
    return DmapOptions(
        base_url=base,
        controlled_key=text["controlled_key"],
        public_key=text["public_key"],
        schedule=text["schedule"],
        attempts=attempts,
        **numbers,
    )


def _shown(key: str) -> str:
    return "'…'" if key else "''"
