"""Realistic GLAM export buckets, and their next day's generation.

Shards look like the BigQuery exports described in reference/notes/seeds-glam-mozagg.md
§1.2–1.3: no header, CSV quoting, ``""`` for empty strings and nothing for NULL, JSON histograms
and percentiles (bucket → value, 4 decimals, numeric key order), ``*`` rows for "all" dimensions,
empty ``metric_key`` for unkeyed probes, NULL ``build_date`` for ``*`` builds (Glean).

Every row is a pure function of (seed, row number, the generation its values date from), so a
next generation (``--base``) keeps every key, gives new values to the requested fraction of
rows, and writes rows in a different order (as a re-export does) without reading the base back.
A manifest ``_sluice_glam_<product>_<channel>.json`` beside the shards records what was
generated.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from sluice.errors import ConfigError
from sluice.recipes.glam.tables import GLEAN_APPS, PRODUCTS, Product, check_channel, shard_name
from sluice.store import S3Options, Store, locate

_POOL = 512  # distinct payloads per histogram size: varied rows without per-row JSON work
_BATCH = 4096  # rows joined per write

_OSES = ("*", "Windows", "Darwin", "Linux")
_PROCESSES = ("*", "parent", "content", "gpu")
_PING_TYPES = ("*", "metrics", "baseline", "events")
_PREFIXES = (
    "gc_ms",
    "cycle_collector",
    "http_page_open",
    "dns_lookup",
    "tab_switch_composite",
    "memory_resident_fast",
    "ssl_handshake_version",
    "cert_validation_success",
    "fx_tab_click",
    "content_paint_time",
    "gfx_crash",
    "media_decoder_backend",
    "network_cache_size",
    "places_bookmarks_count",
    "search_service_init_ms",
    "startup_crash_detected",
    "update_check_code",
    "webrtc_call_count",
    "input_event_response_ms",
    "js_pageload_ms",
)
_SUFFIXES = ("total", "max", "content", "parent", "v2", "ms", "count", "rate", "bytes", "kb")
_KEYS = ("content", "gpu", "socket", "utility", "rdd", "extension")
_HIST_TYPES = ("histogram-exponential", "histogram-linear", "histogram-enumerated")
_SCALAR_AGGS = ("avg", "count", "max", "min", "sum")
_GLEAN_CATEGORIES = (
    "glean_upload",
    "gfx",
    "javascript_gc",
    "network",
    "performance_page",
    "fog_ipc",
    "media_playback",
    "browser_ui",
    "places",
    "power",
)
_GLEAN_TYPES = (
    "timing_distribution",
    "memory_distribution",
    "custom_distribution",
    "counter",
    "labeled_counter",
    "quantity",
)


@dataclass(frozen=True)
class Manifest:
    product: str
    channel: str
    rows: int
    shards: int
    seed: int
    gzip: bool
    #: Fraction of rows given new values in each generation (generation 0 is the first).
    changes: list[float] = field(default_factory=lambda: [1.0])

    @property
    def generation(self) -> int:
        return len(self.changes) - 1


@dataclass(frozen=True)
class GenerateReport:
    out: str
    files: list[str]
    rows: int
    bytes: int
    generation: int
    changed_rows: int


def generate(
    product: Product,
    channel: str,
    *,
    rows: int,
    shards: int,
    out: str,
    base: str | None = None,
    change: float = 0.0,
    seed: int = 1,
    gzip_files: bool = False,
    s3: S3Options | None = None,
) -> GenerateReport:
    """Write a GLAM export bucket to `out`; with `base`, the generation after `base`'s."""
    if product not in PRODUCTS:
        raise ConfigError(f"unknown GLAM product {product!r}; use one of {', '.join(PRODUCTS)}")
    check_channel(channel)
    if not 0.0 <= change <= 1.0:
        raise ConfigError(f"--change must be a fraction between 0 and 1, got {change}")
    store, prefix = locate(out, s3, create=True)
    if base is not None:
        manifest = _next_generation(_read_manifest(base, product, channel, s3), change)
    else:
        if rows < 1 or shards < 1:
            raise ConfigError("--rows and --shards must be at least 1")
        manifest = Manifest(product, channel, rows, min(shards, rows), seed, gzip_files)
    writer = _RowWriter(manifest)
    files, total_bytes = [], 0
    for shard in range(manifest.shards):
        key = _join(prefix, shard_name(product, channel, shard, gzip=manifest.gzip))
        total_bytes += _put(store, key, writer.shard(shard), manifest.gzip)
        files.append(store.uri(key))
    if product != "desktop":
        counts_key = _join(prefix, f"glam-extract-{GLEAN_APPS[product]}_glam_{channel}-counts.csv")
        total_bytes += _put(store, counts_key, iter([writer.counts_file()]), False)
    store.put(
        _join(prefix, manifest_name(product, channel)),
        json.dumps(asdict(manifest), indent=2).encode(),
    )
    return GenerateReport(
        out=out,
        files=files,
        rows=manifest.rows,
        bytes=total_bytes,
        generation=manifest.generation,
        changed_rows=writer.changed_in_last_generation(),
    )


def manifest_name(product: str, channel: str) -> str:
    return f"_sluice_glam_{product}_{channel}.json"


def _read_manifest(base: str, product: str, channel: str, s3: S3Options | None) -> Manifest:
    store, prefix = locate(base, s3)
    name = manifest_name(product, channel)
    try:
        raw = b"".join(store.read(_join(prefix, name)))
        return Manifest(**json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{base}: {name} is not a sluice GLAM manifest ({exc})") from None
    except Exception as exc:
        raise ConfigError(
            f"--base {base} has no readable {name}: it must hold {product}/{channel} shards "
            f"written by 'sluice glam generate' ({exc})"
        ) from None


def _next_generation(base: Manifest, change: float) -> Manifest:
    return Manifest(
        base.product,
        base.channel,
        base.rows,
        base.shards,
        base.seed,
        base.gzip,
        [*base.changes, change],
    )


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name


def _put(store: Store, key: str, batches: Iterator[bytes], compress: bool) -> int:
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for batch in batches:
            size += len(batch)
            yield batch

    body: Iterator[bytes] = counted()
    if compress:
        body = _gzip_stream(body)
    store.put(key, body)
    return size


def _gzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = deflater.compress(chunk)
        if out:
            yield out
    yield deflater.flush()


def _mix(a: int, b: int, c: int) -> int:
    """A cheap, well-spread 32-bit hash of three integers."""
    h = (a * 0x9E3779B1 + b * 0x85EBCA77 + c * 0xC2B2AE3D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    h = (h * 0x297A2D39) & 0xFFFFFFFF
    return h ^ (h >> 15)


class _RowWriter:
    def __init__(self, manifest: Manifest) -> None:
        self.m = manifest
        self.glean = manifest.product != "desktop"
        rng = random.Random(manifest.seed)
        self.hists = {
            n: [_json_field(_hist(rng, n, 4)) for _ in range(_POOL)] for n in range(4, 16)
        }
        self.raw = {n: [_json_field(_hist(rng, n, 0)) for _ in range(_POOL)] for n in range(4, 16)}
        self.percentiles = [_json_field(_percentiles(rng)) for _ in range(_POOL)]
        self._changed_last = 0

    def changed_in_last_generation(self) -> int:
        return self._changed_last

    def _value_generation(self, i: int) -> int:
        """The latest generation that gave row `i` new values."""
        for gen in range(self.m.generation, 0, -1):
            if _mix(i, gen, self.m.seed) < self.m.changes[gen] * 0x100000000:
                return gen
        return 0

    def shard(self, shard: int) -> Iterator[bytes]:
        m = self.m
        lo, hi = shard * m.rows // m.shards, (shard + 1) * m.rows // m.shards
        count = hi - lo
        rotate = (m.generation * 7919) % count if count else 0
        lines: list[str] = []
        for j in range(count):
            i = lo + (j + rotate) % count
            gen = self._value_generation(i)
            if gen == m.generation and gen > 0:
                self._changed_last += 1
            lines.append(self._glean_row(i, gen) if self.glean else self._desktop_row(i, gen))
            if len(lines) >= _BATCH:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()

    def _metric(self, m: int) -> tuple[str, str, str, str]:
        """(metric, metric_key, metric_type, client_agg_type) of metric number m."""
        combos = len(_PREFIXES) * len(_SUFFIXES)
        name = (
            f"{_PREFIXES[m % len(_PREFIXES)]}_{_SUFFIXES[(m // len(_PREFIXES)) % len(_SUFFIXES)]}"
        )
        if m >= combos:
            name += f"_{m // combos}"
        key = _KEYS[m % len(_KEYS)] if m % 6 == 0 else ""
        if m % 4 == 3:
            return name, key, "scalar", _SCALAR_AGGS[m % len(_SCALAR_AGGS)]
        return name, key, _HIST_TYPES[m % len(_HIST_TYPES)], "summed_histogram"

    def _values(self, i: int, gen: int, buckets: int) -> tuple[int, str, str, int, str, str]:
        h = _mix(i, gen, self.m.seed + 7)
        users = 376 + (_mix(i, 1, self.m.seed) + gen * 7919) % 250_000
        return (
            users,
            self.hists[buckets][h % _POOL],
            self.percentiles[(h >> 9) % _POOL],
            users * (1 + h % 40),
            self.raw[buckets][(h >> 18) % _POOL],
            self.percentiles[(h >> 3) % _POOL],
        )

    def _desktop_row(self, i: int, gen: int) -> str:
        m, version, os_name, dim, build = _dimensions(i)
        process = _PROCESSES[dim]
        build_id = "*" if build == 0 else f"202406{build:02d}{(build * 7) % 24:02d}0{build % 6}15"
        metric, key, metric_type, agg = self._metric(m)
        users, hist, perc, sample, raw, raw_perc = self._values(i, gen, 4 + m % 12)
        return (
            f'{version},{os_name},{build_id},{process},{metric},"{key}",{agg},{metric_type},'
            f"{users},{hist},{perc},{sample},{raw},{raw_perc}\n"
        )

    def _glean_row(self, i: int, gen: int) -> str:
        m, version, os_name, dim, build = _dimensions(i)
        ping = _PING_TYPES[dim]
        build_id = "*" if build == 0 else f"202406{build:02d}{(build * 7) % 24:02d}"
        build_date = "" if build == 0 else f"2024-06-{build:02d} {(build * 7) % 24:02d}:00:00"
        category = _GLEAN_CATEGORIES[m % len(_GLEAN_CATEGORIES)]
        metric = f"{category}.{_PREFIXES[(m // 10) % len(_PREFIXES)]}"
        if m >= 10 * len(_PREFIXES):
            metric += f"_{m // (10 * len(_PREFIXES))}"
        metric_type = _GLEAN_TYPES[m % len(_GLEAN_TYPES)]
        key = _KEYS[m % len(_KEYS)] if metric_type == "labeled_counter" else ""
        agg = "summed_histogram" if metric_type.endswith("distribution") else "avg"
        users, hist, perc, sample, _, _ = self._values(i, gen, 4 + m % 12)
        return (
            f"{self.m.channel},{version},{ping},{os_name},{build_id},{build_date},{metric},"
            f'{metric_type},"{key}",{agg},{users},{hist},{perc},{sample}\n'
        )

    def counts_file(self) -> bytes:
        lines = [
            f"{self.m.channel},{128 + v},*,*,,{os_name},{1000 + 37 * v}\n"
            for v in range(3)
            for os_name in _OSES
        ]
        return "".join(lines).encode()


def _dimensions(i: int) -> tuple[int, int, str, int, int]:
    """(metric number, version, os, process/ping index, build index) of row `i`: a mixed-radix
    split with the metric varying fastest, so that small samples still cover every dimension
    and every row has its own key."""
    low, rest = i % 50, i // 50
    version = 128 + rest % 3
    os_name = _OSES[(rest // 3) % 4]
    dim = (rest // 12) % 4
    build = (rest // 48) % 20
    metric = (rest // 960) * 50 + low
    return metric, version, os_name, dim, build


def _hist(rng: random.Random, buckets: int, decimals: int) -> str:
    """A JSON object bucket → value with numeric keys in numeric order (exponential bounds)."""
    keys, bound = [], 0
    for _ in range(buckets):
        keys.append(bound)
        bound = max(bound + 1, int(bound * 1.6))
    if decimals:
        weights = [rng.random() for _ in keys]
        total = sum(weights) or 1.0
        values = [
            f"{round(w / total, decimals):.{decimals}f}".rstrip("0").rstrip(".") or "0"
            for w in weights
        ]
    else:
        values = [str(rng.randrange(0, 50_000)) for _ in keys]
    return "{" + ",".join(f'"{k}":{v}' for k, v in zip(keys, values, strict=True)) + "}"


def _percentiles(rng: random.Random) -> str:
    value, parts = 0.0, []
    for p in (5, 25, 50, 75, 95):
        value += rng.random() * 200
        parts.append(f'"{p}":{round(value, 4)}')
    return "{" + ",".join(parts) + "}"


def _json_field(text: str) -> str:
    """A JSON text as a quoted CSV field."""
    return '"' + text.replace('"', '""') + '"'
