"""When a feed is scanned: an interval (``"5s"``, ``"10m"``, ``"1h"``, ``"1d"``) or a cron
expression of five fields (``"0 15 * * *"``: minute, hour, day of month, month, day of week;
each ``*``, a number, a range ``a-b``, a list ``a,b`` or a step ``*/n`` / ``a-b/n``; day of
week 0-7 with 0 and 7 both Sunday). Cron times are UTC.

As in cron, when both the day of month and the day of week are restricted, a day matching
either one fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sluice.errors import ConfigError

#: How often a feed is scanned when it does not say.
DEFAULT = "60s"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
#: The smallest interval: scanning more often than this only loads the store.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 366 * 86400.0
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: `interval` seconds, or the allowed values of each cron field."""

    text: str
    interval: float | None = None
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    any_day: bool = True
    any_weekday: bool = True

    def next_after(self, moment: datetime) -> datetime:
        """The first time strictly after `moment` at which the schedule fires."""
        if self.interval is not None:
            return moment + timedelta(seconds=self.interval)
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):  # every day of five years: leap days and rare dates included
            if day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        at = day.replace(hour=hour, minute=minute)
                        if at >= start:
                            return at
            day += timedelta(days=1)
        raise ConfigError(f"schedule {self.text!r} never fires")

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday = 0
        by_day, by_weekday = day.day in self.days, weekday in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday


def parse(text: str) -> Schedule:
    """Parse an interval or a cron expression; raise ConfigError naming what is wrong."""
    stripped = " ".join(str(text).split())
    match = _INTERVAL.match(stripped)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
            raise ConfigError(f"schedule {text!r}: an interval must be between 1s and 366d")
        return Schedule(text=stripped, interval=seconds)
    parts = stripped.split(" ")
    if len(parts) != 5:
        raise ConfigError(
            f"schedule {text!r} is neither an interval (like '30s', '10m', '1h', '1d') nor a "
            "cron expression of five fields (like '0 15 * * *')"
        )
    values = [
        _field(part, name, lo, hi, text)
        for part, (name, lo, hi) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    return Schedule(
        text=stripped,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def _field(part: str, name: str, lo: int, hi: int, text: str) -> frozenset[int]:
    found: set[int] = set()
    for item in part.split(","):
        found |= _item(item, name, lo, hi, text)
    return frozenset(found)


def _item(item: str, name: str, lo: int, hi: int, text: str) -> set[int]:
    base, _, step_text = item.partition("/")
    try:
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = last = int(base)
            if step_text:
                last = hi
    except ValueError:
        raise ConfigError(
            f"schedule {text!r}: {name} field {item!r} is not a number, a range, a list or a step"
        ) from None
    if step < 1 or not lo <= first <= last <= hi:
        raise ConfigError(f"schedule {text!r}: {name} must be within {lo}-{hi}, got {item!r}")
    return set(range(first, last + 1, step))
