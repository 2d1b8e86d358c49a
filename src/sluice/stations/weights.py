"""The weight of one observation (ichnaea/models/observation.py): accuracy × age × speed ×
signal, zero when the position is too vague, too old or taken too fast."""

from __future__ import annotations

import math
from functools import lru_cache

from sluice.stations.keys import Kind

#: Accuracy (m) above which an observation weighs nothing.
MAX_ACCURACY = {"blue": 100.0, "wifi": 200.0, "cell": 1000.0}
MAX_AGE_MS = 20_000
MAX_SPEED = 50.0
#: Signal (dBm) assumed when an observation has none.
DEFAULT_WIFI_SIGNAL = -80
DEFAULT_CELL_SIGNAL = {"gsm": -95, "wcdma": -100, "lte": -105}
CELL_SIGNAL_OFFSET = {"gsm": -5, "wcdma": 0, "lte": 5}


def accuracy_weight(kind: Kind, accuracy: float | None) -> float:
    if accuracy is None or accuracy == 0:
        accuracy = 10.0
    if abs(accuracy) > MAX_ACCURACY[kind]:
        return 0.0
    return math.sqrt(10.0 / max(abs(accuracy), 10.0))


def age_weight(age: int | None) -> float:
    if age is None:
        age = 2000
    if abs(age) > MAX_AGE_MS:
        return 0.0
    return min(1.0, math.sqrt(2000.0 / max(abs(age), 2000)))


def speed_weight(speed: float | None) -> float:
    if speed is None:
        return 1.0
    if abs(speed) > MAX_SPEED:
        return 0.0
    return min(1.0, math.sqrt(5.0 / max(abs(speed), 1.0)))


@lru_cache(maxsize=4096)  # valid signals are a few hundred integers per kind and radio
def signal_weight(kind: Kind, signal: int | None, radio: str | None) -> float:
    if kind == "blue":
        return 1.0
    if kind == "wifi":
        s = DEFAULT_WIFI_SIGNAL if signal is None else signal
        return 0.0 if s == 20 else float((10000 / (s - 20) ** 2) ** 2)
    radio = radio or "gsm"
    s = DEFAULT_CELL_SIGNAL[radio] if signal is None else signal
    shifted = s + CELL_SIGNAL_OFFSET[radio]
    if shifted == 0:
        return 0.0  # unreachable for valid cell signals (all negative); no division by zero
    return float((10000 / shifted**2) ** 2)


def weight(
    kind: Kind,
    *,
    accuracy: float | None,
    age: int | None,
    speed: float | None,
    signal: int | None,
    radio: str | None = None,
) -> float:
    return (
        accuracy_weight(kind, accuracy)
        * age_weight(age)
        * speed_weight(speed)
        * signal_weight(kind, signal, radio)
    )


def network_weight(
    kind: Kind,
    accuracy_w: float,
    speed_w: float,
    age: int | None,
    signal: int | None,
    radio: str | None,
) -> float:
    """`weight` with the report's accuracy and speed factors computed once for all its
    networks: the same factors multiplied in the same order, so the same value."""
    age_w = 1.0 if age is None else age_weight(age)  # age_weight(None) is exactly 1.0
    return accuracy_w * age_w * speed_w * signal_weight(kind, signal, radio)
