"""Schedules: intervals and five-field cron expressions, and when they fire next."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice import schedule
from sluice.errors import ConfigError

NOON = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("10m", 600), ("1.5h", 5400), ("1d", 86400), ("60s", 60)]
)
def test_intervals(text: str, seconds: float) -> None:
    parsed = schedule.parse(text)
    assert parsed.interval == seconds
    assert (parsed.next_after(NOON) - NOON).total_seconds() == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 15 * * *", datetime(2026, 12, 1, 15, 0, tzinfo=UTC)),
        ("*/5 * * * *", datetime(2026, 12, 1, 12, 5, tzinfo=UTC)),
        ("0 9 * * *", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        ("30 8 1 * *", datetime(2027, 1, 1, 8, 30, tzinfo=UTC)),
        ("0 0 * * 0", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),  # Sunday
        ("0 0 * * 7", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 0 29 2 *", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),  # the next leap day
        ("15,45 12-13 * * 1-5", datetime(2026, 12, 1, 12, 15, tzinfo=UTC)),
        # day of month OR day of week when both are restricted, as cron does
        ("0 0 25 * 3", datetime(2026, 12, 2, 0, 0, tzinfo=UTC)),
    ],
)
def test_cron(text: str, expected: datetime) -> None:
    assert schedule.parse(text).next_after(NOON) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("often", "neither an interval"),
        ("0s", "between 1s and 366d"),
        ("400d", "between 1s and 366d"),
        ("60 * * * *", "minute must be within 0-59, got '60'"),
        ("* 24 * * *", "hour must be within 0-23"),
        ("* * 0 * *", "day of month must be within 1-31"),
        ("* * * 13 *", "month must be within 1-12"),
        ("* * * * 8", "day of week must be within 0-7"),
        ("*/0 * * * *", "minute must be within 0-59, got '*/0'"),
        ("a * * * *", "minute field 'a' is not a number"),
        ("* * * *", "five fields"),
    ],
)
def test_bad_schedules_name_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        schedule.parse(text)
    assert fragment in str(raised.value)
    assert repr(text) in str(raised.value) or text in str(raised.value)


def test_a_date_that_never_comes_is_an_error() -> None:
    with pytest.raises(ConfigError, match="never fires"):
        schedule.parse("0 0 31 2 *").next_after(NOON)
