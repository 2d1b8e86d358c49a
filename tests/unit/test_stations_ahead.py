"""The lookahead of the station updater: a batch offered is prepared when asked, taken by its
id only, and a batch whose preparation fails is left to fail when it is applied."""

from __future__ import annotations

from typing import Any

from sluice.errors import TerminalError
from sluice.stations.ahead import Lookahead
from tests.fixtures.stations import report

REPORTS = [
    report(51.5, -0.1, wifi=["00:11:22:33:44:55", "00:11:22:33:44:66"]),
    report(51.5, -0.1, blue=["aa:bb:cc:dd:ee:01"], cells=[("lte", 262, 1, 4, 100)]),
]


def test_a_batch_offered_is_prepared_when_asked_and_taken_once_by_its_id() -> None:
    ahead = Lookahead()
    asked: list[int] = []

    def reports() -> list[dict[str, Any]]:
        asked.append(1)
        return REPORTS

    ahead.offer("b2", reports)
    assert asked == [] and ahead.take("b2") is None  # nothing done before `prepare`
    ahead.prepare()
    ahead.prepare()  # once only
    assert asked == [1]
    assert ahead.take("b1") is None  # another batch (a retry of the current one)
    prepared = ahead.take("b2")
    assert prepared is not None and prepared.reports == 2
    assert prepared.gathered.observations == 4
    assert [k.kind for k in prepared.kinds] == ["blue", "cell", "wifi"]
    assert sorted(prepared.tables) == [
        "blue_shard_c",
        "cell_lte",
        "datamap_nw",
        "wifi_shard_2",
    ]
    assert ahead.take("b2") is None


def test_a_new_offer_replaces_what_was_prepared() -> None:
    ahead = Lookahead()
    ahead.offer("b2", lambda: REPORTS)
    ahead.prepare()
    ahead.offer("b3", lambda: REPORTS[:1])
    assert ahead.take("b2") is None
    ahead.prepare()
    taken = ahead.take("b3")
    assert taken is not None and taken.reports == 1


def test_a_batch_whose_reports_fail_is_not_prepared() -> None:
    ahead = Lookahead()

    def broken() -> list[dict[str, Any]]:
        raise TerminalError("export rec, entry 1-0: the report is not JSON")

    ahead.offer("b2", broken)
    ahead.prepare()  # the error is the batch's, raised when it is applied
    assert ahead.take("b2") is None


def test_the_datamap_switch_is_kept() -> None:
    ahead = Lookahead(map_content=False)
    ahead.offer("b2", lambda: REPORTS)
    ahead.prepare()
    taken = ahead.take("b2")
    assert taken is not None and taken.gathered.grids == {}
    assert "datamap_nw" not in taken.tables
