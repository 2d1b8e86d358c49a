"""The stream batcher's pure parts: what makes a message a JSON line, how ids name objects,
and the public surface of ``sluice.stream``."""

from __future__ import annotations

import sluice.stream
from sluice.stream import id_part, json_line


def test_the_public_surface_of_sluice_stream_is_pinned() -> None:
    assert sluice.stream.__all__ == [
        "KEY_PREFIX",
        "BatchOptions",
        "BatchReport",
        "Batcher",
        "Broker",
        "Message",
        "RedisBroker",
        "id_part",
        "json_line",
    ]


def test_a_json_message_is_kept_as_it_is_and_a_multi_line_one_made_one_line() -> None:
    assert json_line(b' {"a": 1} ') == b'{"a": 1}'
    assert json_line(b'{\n  "a": [1,\n 2]\n}') == b'{"a":[1,2]}'
    assert json_line(b"42") == b"42"


def test_a_message_that_is_not_json_says_why() -> None:
    assert json_line(b"") == "empty message"
    assert json_line(b"{'a': 1}") == (
        "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert json_line(b'"\xc3"') == "not UTF-8 (byte 1)"


def test_ids_name_objects_in_message_order() -> None:
    assert id_part("1700000000000-0") == "1700000000000-000000"
    assert id_part("999-12") == "0000000000999-000012"
    names = [id_part(i) for i in ("999-12", "1000-0", "1000-3")]
    assert names == sorted(names)
