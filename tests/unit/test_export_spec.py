"""Export declarations: anchored table-name patterns, and dump rows flattened as the server
flattens them."""

from __future__ import annotations

import re
from datetime import date

import pytest

from sluice.errors import ConfigError
from sluice.export.dump import flatten
from sluice.recipes.mozagg.tables import spec

DAY = date(2019, 12, 1)


def test_names_are_matched_whole_and_validated() -> None:
    declared = spec("submission_date")
    pattern = re.compile(declared.name_regex(DAY))
    good = ["submission_date_nightly_43_20191201", "submission_date_aurora_0_20191201"]
    bad = [
        "submission_date_nightly_43_20191201_old",  # anchored at the end
        "x_submission_date_nightly_43_20191201",  # and at the start
        "submission_date_nightly_43_20191202",  # another day
        "submission_date_night_ly_43_20191201",  # a channel with an underscore
        "submission_date_nightly_4a_20191201",  # a version that is not a number
        "build_id_nightly_43_20191201",  # another type
    ]
    assert [bool(pattern.fullmatch(n)) for n in good] == [True, True]
    assert [bool(pattern.fullmatch(n)) for n in bad] == [False] * len(bad)
    assert declared.name_values(good[0], DAY) == {"channel": "nightly", "version": "43"}
    with pytest.raises(ConfigError, match="does not match"):
        declared.name_values(bad[0], DAY)
    with pytest.raises(ConfigError, match="unknown aggregate type"):
        spec("submission")  # the README's spelling, which the seed mixed up


def test_flatten_like_the_server() -> None:
    declared = spec("build_id")
    dims = b'{"os": "Linux", "child": true, "label": "a\\\\b", "metric": "M", "osVersion": 5}'
    reason, values, _, _ = flatten([dims, b"{1,2,3,40,5}"], declared, False)
    assert reason is None
    assert values == ["Linux", "true", "a\\b", "M", "5", None, None, "{1,2,3}", "40", "5"]
    assert flatten([b"[1]", b"{1,2}"], declared, False)[0] == (
        "dimensions is a JSON array, not an object"
    )
    assert flatten([None, b"{1}"], declared, False)[0] == "histogram has 1 elements, fewer than 2"
    assert flatten([None, b"{1,NULL,2}"], declared, False)[0] == "histogram has a NULL element"
    assert flatten([None, None], declared, False)[0] == "histogram is NULL"
    assert (
        flatten([b"{}", b"{1,2}", b"x"], declared, False)[0] == "the row has 3 fields, expected 2"
    )
    _, values, _, _ = flatten([None, b"{7,8}"], declared, True)
    assert values == [None] * 7 + ["{}", "7", "8", "[7,8]"]
