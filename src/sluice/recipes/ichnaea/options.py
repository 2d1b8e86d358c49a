"""The Ichnaea intake's settings (the ``[ichnaea]`` section), light to import: the settings
module builds them without loading the HTTP or Redis machinery."""

from __future__ import annotations

from dataclasses import dataclass

#: The prefix of the recipe's Redis keys (stream, counters, daily limits).
REDIS_PREFIX = "sluice:ichnaea"
#: The schema of the recipe's tables (migration 0007_ichnaea.sql).
SCHEMA = "ichnaea"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class IchnaeaOptions:
    """The ``[ichnaea]`` settings the shells hand in."""

    #: ``sluice serve`` mounts the submit routes too.
    enabled: bool = False
    redis_url: str = DEFAULT_REDIS_URL
    #: The prefix of the intake's Redis keys: two installations may share one Redis.
    redis_prefix: str = REDIS_PREFIX
    #: Submissions are answered 503 once the intake stream holds this many reports.
    max_backlog: int = 1_000_000
    #: Seconds a client refused with 503 is told to wait.
    retry_after: int = 30
    #: The most bytes of a request body, and of what a gzip body inflates to.
    max_body_bytes: int = 1 << 20
    max_inflated_bytes: int = 16 << 20
    #: Seconds a looked-up API key is trusted in one process (± 10 %).
    key_cache_seconds: float = 300.0
    #: Intake reports one fan-out step moves to the export queues.
    fanout_batch: int = 1000
    #: Seconds a batch (or intake entry) in a silent consumer's hands waits before another
    #: consumer takes it over. Longer than the longest try of a batch (the 60 s POST timeout).
    claim_idle_seconds: float = 120.0
    #: Pause after the n-th failed try of a batch: this × (n² + 1) seconds (1, 2, 5 s).
    retry_base_seconds: float = 1.0
    #: Seconds a geosubmit POST may take.
    export_timeout_seconds: float = 60.0
    #: Seconds between two reads of the export configs by a running fan-out.
    config_seconds: float = 10.0
