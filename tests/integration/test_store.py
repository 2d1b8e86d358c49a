"""The store facade against a local folder and a real S3-compatible server process: listing,
reading (raw, streamed, gunzipped), writing (bytes and multipart streams), copy, move, delete,
and the classification of every failure."""

from __future__ import annotations

import gzip
import random
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from sluice.config import S3Options
from sluice.errors import (
    BadInputError,
    ConfigError,
    ObjectGone,
    StoreUnavailable,
    TransientError,
)
from sluice.store import READ_CHUNK, Store, locate, open_store

MIB = 1 << 20


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store: a local folder, or a fresh bucket on the S3 server process."""
    if request.param == "local":
        found, prefix = locate(str(tmp_path / "bucket"), create=True)
        assert found.url == (tmp_path / "bucket").resolve().as_uri()
    else:
        bucket: str = request.getfixturevalue("s3_bucket")
        options: S3Options = request.getfixturevalue("s3_options")
        found, prefix = locate(f"s3://{bucket}", options)
        assert found.url == f"s3://{bucket}"
    assert prefix == ""
    return found


def is_s3(store: Store) -> bool:
    return store.url.startswith("s3://")


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def read_all(store: Store, key: str, etag: str | None = None) -> bytes:
    return b"".join(store.read(key, etag=etag))


# -- listing and metadata ------------------------------------------------------------------------


def test_list_reports_size_etag_and_modified(store: Store) -> None:
    written = {
        "a/one.csv": b"1,2\n",
        "a/two.csv": b"3,4\n5,6\n",
        "b/three.csv.gz": gzip.compress(b"7,8\n"),
    }
    heads = {key: store.put(key, data) for key, data in written.items()}

    listed = {info.key: info for info in store.list()}

    assert set(listed) == set(written)
    for key, data in written.items():
        info = listed[key]
        assert info.size == len(data)
        assert info.etag
        assert info.etag == heads[key].etag == store.head(key).etag
        assert info.version == info.etag
        assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None
    assert listed["b/three.csv.gz"].compressed
    assert not listed["a/one.csv"].compressed


def test_list_filters_by_whole_path_segments(store: Store) -> None:
    for key in ["a/x.csv", "a/x10.csv", "a/sub/z.csv", "a1/y.csv", "ab.csv", "b/a/w.csv"]:
        store.put(key, b"x\n")

    def keys(prefix: str) -> list[str]:
        return sorted(info.key for info in store.list(prefix))

    assert keys("a") == ["a/sub/z.csv", "a/x.csv", "a/x10.csv"]
    assert keys("a/") == ["a/sub/z.csv", "a/x.csv", "a/x10.csv"]
    assert keys("a/sub") == ["a/sub/z.csv"]
    assert keys("a/x") == []  # not a folder: 'a/x.csv' and 'a/x10.csv' are not below it
    assert keys("a1") == ["a1/y.csv"]
    assert keys("nothing") == []
    assert len(keys("")) == 6


def test_head_matches_what_was_written(store: Store) -> None:
    info = store.put("data/file.csv", b"hello,world\n")

    head = store.head("data/file.csv")

    assert head == info
    assert head.key == "data/file.csv"
    assert head.size == 12
    assert store.uri("data/file.csv") == f"{store.url}/data/file.csv"


# -- reading -------------------------------------------------------------------------------------


def test_read_streams_large_objects_in_chunks(store: Store) -> None:
    data = payload(3 * READ_CHUNK + 12345)
    store.put("big.bin", data)

    pieces = list(store.read("big.bin"))

    assert b"".join(pieces) == data
    assert len(pieces) >= 3  # streamed, not one buffer
    assert all(len(piece) <= 2 * READ_CHUNK for piece in pieces)


def test_read_with_the_current_etag(store: Store) -> None:
    info = store.put("k.csv", b"current\n")

    assert read_all(store, "k.csv", etag=info.etag) == b"current\n"


def test_open_gunzips_gz_objects_and_leaves_others_alone(store: Store) -> None:
    text = b"".join(f"{i},row {i}\n".encode() for i in range(50_000))
    packed = gzip.compress(text)
    store.put("rows.csv.gz", packed)
    store.put("rows.csv", text)
    store.put("packed.bin", packed)  # not named .gz: returned as stored

    assert b"".join(store.open("rows.csv.gz")) == text
    assert b"".join(store.open("rows.csv")) == text
    assert b"".join(store.open("packed.bin")) == packed
    assert b"".join(store.read("rows.csv.gz")) == packed


def test_open_reads_multi_member_gzip(store: Store) -> None:
    store.put("parts.csv.gz", gzip.compress(b"1,a\n") + gzip.compress(b"2,b\n"))

    assert b"".join(store.open("parts.csv.gz")) == b"1,a\n2,b\n"


def test_open_with_etag_reads_that_version(store: Store) -> None:
    first = store.put("v.csv.gz", gzip.compress(b"first\n"))
    store.put("v.csv.gz", gzip.compress(b"second\n"))

    with pytest.raises(ObjectGone, match="changed since it was listed"):
        b"".join(store.open("v.csv.gz", etag=first.etag))


def test_truncated_gzip_is_bad_input_naming_the_object(store: Store) -> None:
    text = b"".join(f"{i},{random.Random(i).random()}\n".encode() for i in range(20_000))
    packed = gzip.compress(text)
    store.put("cut.csv.gz", packed[: len(packed) // 2])

    with pytest.raises(BadInputError) as caught:
        b"".join(store.open("cut.csv.gz"))

    assert caught.value.obj == store.uri("cut.csv.gz")
    assert str(caught.value).startswith(f"{store.uri('cut.csv.gz')}, line ")
    assert "truncated" in caught.value.reason
    assert caught.value.line is not None and caught.value.line > 1


def test_corrupt_gzip_is_bad_input_naming_the_object(store: Store) -> None:
    store.put("junk.csv.gz", b"this is not gzip at all\n" * 10)

    with pytest.raises(BadInputError) as caught:
        b"".join(store.open("junk.csv.gz"))

    assert caught.value.obj == store.uri("junk.csv.gz")
    assert "corrupt gzip data" in caught.value.reason


# -- writing -------------------------------------------------------------------------------------


def test_put_bytes(store: Store) -> None:
    info = store.put("dir/new.csv", b"a,b\n")

    assert (info.key, info.size) == ("dir/new.csv", 4)
    assert read_all(store, "dir/new.csv") == b"a,b\n"


def test_put_streams_an_iterator_as_a_multipart_upload(store: Store) -> None:
    sizes = [3 * MIB + 17, 4 * MIB, 1, 2 * MIB + 5, 3 * MIB]  # 12 MiB and 23 bytes
    pieces = [payload(size, seed) for seed, size in enumerate(sizes)]
    handed_out: list[int] = []

    def chunks() -> Iterator[bytes]:
        for piece in pieces:
            handed_out.append(len(piece))
            yield piece

    info = store.put("stream/big.bin", chunks())

    assert handed_out == sizes  # every chunk consumed, once
    assert info.size == sum(sizes)
    assert read_all(store, "stream/big.bin") == b"".join(pieces)
    if is_s3(store):
        # S3 marks the etag of a multipart upload with its number of parts.
        match = re.fullmatch(r'"?[0-9a-f]{32}-(\d+)"?', info.etag or "")
        assert match and int(match.group(1)) >= 2, info.etag


def test_a_rewritten_object_gets_a_new_version(store: Store) -> None:
    first = store.put("same.csv", b"1,old\n")
    second = store.put("same.csv", b"1,new\n")  # same size, new content

    assert second.version != first.version
    assert store.head("same.csv").version == second.version
    assert [info.version for info in store.list() if info.key == "same.csv"] == [second.version]
    assert read_all(store, "same.csv", etag=second.etag) == b"1,new\n"


def test_reading_an_old_version_is_object_gone(store: Store) -> None:
    first = store.put("same.csv", b"1,old\n")
    store.put("same.csv", b"1,new\n")

    with pytest.raises(ObjectGone) as caught:
        read_all(store, "same.csv", etag=first.etag)

    assert str(caught.value) == (
        f"{store.uri('same.csv')} changed since it was listed (a newer version replaced it)"
    )


def test_a_missing_key_is_object_gone(store: Store) -> None:
    expected = f"{store.uri('no/such.csv')} does not exist (deleted since it was listed?)"

    with pytest.raises(ObjectGone) as read_error:
        read_all(store, "no/such.csv")
    with pytest.raises(ObjectGone) as head_error:
        store.head("no/such.csv")
    with pytest.raises(ObjectGone):
        b"".join(store.open("no/such.csv.gz"))

    assert str(read_error.value) == expected
    assert str(head_error.value) == expected


# -- copy, move, delete --------------------------------------------------------------------------


def test_copy(store: Store) -> None:
    store.put("src/a.csv", b"copy me\n")

    store.copy("src/a.csv", "dst/a.csv")

    assert read_all(store, "src/a.csv") == b"copy me\n"
    assert read_all(store, "dst/a.csv") == b"copy me\n"
    assert sorted(info.key for info in store.list()) == ["dst/a.csv", "src/a.csv"]


def test_move(store: Store) -> None:
    store.put("incoming/a.csv", b"move me\n")

    store.move("incoming/a.csv", "archive/a.csv")

    assert read_all(store, "archive/a.csv") == b"move me\n"
    with pytest.raises(ObjectGone):
        store.head("incoming/a.csv")
    assert [info.key for info in store.list()] == ["archive/a.csv"]


def test_copy_or_move_of_a_missing_object_is_object_gone(store: Store) -> None:
    with pytest.raises(ObjectGone, match=re.escape(store.uri("missing.csv"))):
        store.copy("missing.csv", "x.csv")
    with pytest.raises(ObjectGone, match=re.escape(store.uri("missing.csv"))):
        store.move("missing.csv", "x.csv")


def test_delete(store: Store) -> None:
    store.put("gone.csv", b"bye\n")
    store.put("kept.csv", b"hi\n")

    store.delete("gone.csv")

    assert [info.key for info in store.list()] == ["kept.csv"]
    with pytest.raises(ObjectGone):
        read_all(store, "gone.csv")


# -- locating stores -----------------------------------------------------------------------------


def test_locate_splits_bucket_and_prefix(s3_options: S3Options) -> None:
    store, prefix = locate("s3://some-bucket/a/b/c", s3_options)

    assert (store.url, prefix) == ("s3://some-bucket", "a/b/c")
    assert store.uri("a/b/c/x.csv") == "s3://some-bucket/a/b/c/x.csv"
    assert open_store("s3://some-bucket", s3_options).url == "s3://some-bucket"


def test_locate_local_paths_and_file_urls(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    by_path, prefix = locate(str(folder))
    by_url, url_prefix = locate(folder.as_uri())

    assert by_path.url == by_url.url == folder.resolve().as_uri()
    assert prefix == url_prefix == ""
    by_path.put("x.csv", b"1\n")
    assert (folder / "x.csv").read_bytes() == b"1\n"
    assert read_all(open_store(by_path.url), "x.csv") == b"1\n"


def test_a_missing_folder_is_an_error_unless_it_is_a_place_to_write(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "bucket"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: does not exist")):
        locate(str(missing))
    with pytest.raises(ConfigError, match="does not exist"):
        open_store(missing.as_uri())
    assert not missing.parent.exists()  # reading never creates it

    (tmp_path / "file.csv").write_bytes(b"1\n")
    with pytest.raises(ConfigError, match=r"file\.csv: is not a folder"):
        locate(str(tmp_path / "file.csv"))

    store, _ = locate(str(missing), create=True)
    assert missing.is_dir() and store.url == missing.resolve().as_uri()


@pytest.mark.parametrize(
    "url", ["ftp://host/data", "http://example.com/bucket", "azure://container/x", "hdfs://n/x"]
)
def test_unsupported_schemes_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"unsupported store URL {url!r}")):
        locate(url)
    with pytest.raises(ConfigError):
        open_store(url)


@pytest.mark.parametrize(("url", "fragment"), [("s3:///x", "bucket"), ("gs:///x", "no bucket")])
def test_a_url_without_bucket_is_a_config_error(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        locate(url)


def test_open_store_refuses_a_prefix(s3_options: S3Options) -> None:
    with pytest.raises(ConfigError, match="is not a store root"):
        open_store("s3://bucket/some/prefix", s3_options)


def test_an_unreachable_endpoint_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    store, _ = locate("s3://nobody-home/x", S3Options(endpoint_url=f"http://127.0.0.1:{port}"))

    with pytest.raises(StoreUnavailable) as listing:
        list(store.list("x"))
    with pytest.raises(StoreUnavailable) as reading:
        read_all(store, "x/a.csv")

    assert isinstance(listing.value, TransientError)
    assert str(listing.value).startswith("s3://nobody-home/x: ")
    assert str(reading.value).startswith("s3://nobody-home/x/a.csv: ")
    assert "\n" not in str(reading.value)


def test_no_credentials_is_a_config_error_that_says_how_to_give_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: no metadata service answers there
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{port}")
    store, _ = locate("s3://private/x", S3Options(endpoint_url=f"http://127.0.0.1:{port}"))

    with pytest.raises(ConfigError) as listing:
        list(store.list("x"))

    assert str(listing.value).startswith(
        "s3://private/x: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "or AWS_SKIP_SIGNATURE=true for a public bucket ("
    )
    assert "\n" not in str(listing.value)
