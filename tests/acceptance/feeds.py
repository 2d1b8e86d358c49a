"""A small project for the runtime tests: a sluice.toml declaring one CSV feed of a bucket
folder, and shards written into that folder."""

from __future__ import annotations

from pathlib import Path

TABLE = "events"


def write_project(
    folder: Path,
    *,
    schedule: str = "1s",
    ordered: bool = False,
    max_active: int | None = None,
    serving: bool = False,
) -> Path:
    """Write ``sluice.toml`` with the feed ``events`` over ``folder/bucket``; return the bucket."""
    bucket = folder / "bucket"
    bucket.mkdir(exist_ok=True)
    lines = [
        "[feeds.events]",
        'source = "bucket"',
        r"pattern = 'e-\d+\.csv'",
        f'table = "{TABLE}"',
        'columns = ["event_id bigint not null", "shard integer not null", "value text"]',
        'key = ["event_id"]',
        f'schedule = "{schedule}"',
        f"ordered = {'true' if ordered else 'false'}",
    ]
    if max_active is not None:
        lines.append(f"max_active = {max_active}")
    if serving:
        lines.append('serving = { view = "view_events", unique = ["id"] }')
    (folder / "sluice.toml").write_text("\n".join(lines) + "\n")
    return bucket


def write_shard(bucket: Path, shard: int, rows: int) -> Path:
    """``e-<shard>.csv`` with `rows` rows whose keys are unique across shards."""
    path = bucket / f"e-{shard:04d}.csv"
    text = "".join(f"{shard * 1_000_000 + i},{shard},value {i}\n" for i in range(rows))
    path.write_text(text)
    return path


def write_sync(folder: Path, bucket: Path, *, prefix: str = "30001") -> None:
    """Add a CryoET sync of `bucket` to the project file of `folder`."""
    lines = [
        "",
        "[syncs.portal]",
        'recipe = "cryoet"',
        f'bucket = "{bucket}"',
        'https_prefix = "https://foo.com"',
        f's3_prefix = "{prefix}"',
        "everything = true",
        'schedule = "1h"',
    ]
    project = folder / "sluice.toml"
    existing = project.read_text() if project.exists() else ""
    project.write_text(existing + "\n".join(lines) + "\n")
