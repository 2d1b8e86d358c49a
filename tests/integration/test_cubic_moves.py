"""Moves between stores are idempotent: run again after a crash at any point they finish the
move; a different object at the destination is kept beside, never overwritten or dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import StoreUnavailable
from sluice.route.moves import Place, beside, move_one, move_with_dfm
from sluice.store import locate


def _place(path: Path) -> Place:
    store, prefix = locate(str(path), create=True)
    return Place(store, prefix)


@pytest.fixture
def ends(tmp_path: Path) -> tuple[Place, Place, Path, Path]:
    src, dst = tmp_path / "incoming", tmp_path / "archive"
    (src / "a").mkdir(parents=True)
    return _place(src), _place(dst), src, dst


def test_a_move_copies_then_deletes_with_its_dfm(ends: tuple[Place, Place, Path, Path]) -> None:
    src, dst, src_dir, dst_dir = ends
    (src_dir / "a/LOAD1.csv.gz").write_bytes(b"data")
    (src_dir / "a/LOAD1.dfm").write_bytes(b"{}")
    moved = move_with_dfm(src, "a/LOAD1.csv.gz", dst, "a/snapshot=X/LOAD1.csv.gz", dfm=True)
    assert (moved.key, moved.kept_beside, moved.already) == (
        "a/snapshot=X/LOAD1.csv.gz",
        None,
        False,
    )
    assert (dst_dir / "a/snapshot=X/LOAD1.csv.gz").read_bytes() == b"data"
    assert (dst_dir / "a/snapshot=X/LOAD1.dfm").read_bytes() == b"{}"
    assert list(src_dir.rglob("*.*")) == []
    # run again (a crash after the delete, before the ledger's commit): already done
    again = move_with_dfm(src, "a/LOAD1.csv.gz", dst, "a/snapshot=X/LOAD1.csv.gz", dfm=True)
    assert again.already and again.key == "a/snapshot=X/LOAD1.csv.gz"


def test_a_crash_between_copy_and_delete(ends: tuple[Place, Place, Path, Path]) -> None:
    src, dst, src_dir, dst_dir = ends
    (src_dir / "a/x.csv.gz").write_bytes(b"same")
    (dst_dir / "a").mkdir(parents=True)
    (dst_dir / "a/x.csv.gz").write_bytes(b"same")  # the copy was made, the delete was not
    moved = move_one(src, "a/x.csv.gz", dst, "a/x.csv.gz")
    assert moved is not None and moved.already and moved.kept_beside is None
    assert not (src_dir / "a/x.csv.gz").exists()
    assert sorted(p.name for p in (dst_dir / "a").iterdir()) == ["x.csv.gz"]


def test_a_different_object_at_the_destination_is_kept_beside(
    ends: tuple[Place, Place, Path, Path],
) -> None:
    src, dst, src_dir, dst_dir = ends
    (src_dir / "a/x.csv.gz").write_bytes(b"republished")
    (dst_dir / "a").mkdir(parents=True)
    (dst_dir / "a/x.csv.gz").write_bytes(b"first")
    version = src.store.head(src.full("a/x.csv.gz")).version
    moved = move_one(src, "a/x.csv.gz", dst, "a/x.csv.gz")
    assert moved is not None
    assert (moved.key, moved.kept_beside) == (beside("a/x.csv.gz", version), "a/x.csv.gz")
    assert (dst_dir / "a/x.csv.gz").read_bytes() == b"first"
    assert (dst_dir / moved.key).read_bytes() == b"republished"
    assert not (src_dir / "a/x.csv.gz").exists()


def test_both_ends_missing_is_an_unknown_outcome_retried(
    ends: tuple[Place, Place, Path, Path],
) -> None:
    src, dst, _, _ = ends
    with pytest.raises(StoreUnavailable, match="the move's outcome is unknown; retrying"):
        move_one(src, "a/gone.csv.gz", dst, "a/gone.csv.gz")
    assert move_one(src, "a/gone.dfm", dst, "a/gone.dfm", required=False) is None
