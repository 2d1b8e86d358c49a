"""The three submit payloads of Ichnaea, declared as lenient schemas.

- v2 (``/v2/geosubmit``): the report shape every other version is converted to and that is
  queued: ``timestamp``, ``position`` {...}, ``bluetoothBeacons``, ``cellTowers``,
  ``wifiAccessPoints``.
- v1 (``/v1/geosubmit``): the position fields sit flat on the report; cells say ``psc``.
- v0 (``/v1/submit``): short names (``lat``, ``lon``, ``radio``, ``key``, ``signal``,
  ``mcc`` ...), the lists ``blue``, ``cell`` and ``wifi``, and ``time`` as ISO-8601 text.

Renames give every version the v2 names; moving the position fields into ``position`` and the
rules across fields (radioType inherited, reports without networks dropped) are in
`sluice.recipes.ichnaea.reports`.
"""

from __future__ import annotations

from sluice.intake.lenient import (
    EpochMillis,
    Integer,
    IsoMillis,
    Items,
    Node,
    Number,
    Record,
    Text,
    Vocabulary,
)

#: Timestamps outside 10^12..10^13 ms (about 2001-2286) are taken as "now".
MIN_TIMESTAMP = 10**12
MAX_TIMESTAMP = 10**13

RADIO = Vocabulary(frozenset({"gsm", "cdma", "wcdma", "lte"}), aliases={"umts": "wcdma"})
#: The docs' ``gps`` and ``manual`` are not words of it: such a report counts as ``gnss``.
SOURCE = Vocabulary(frozenset({"fixed", "gnss", "fused", "query"}))
#: What a report's source is when its position does not say.
DEFAULT_SOURCE = "gnss"

#: The fields of ``position`` (v2), which v0 and v1 have flat on the report.
POSITION_FIELDS = (
    "latitude",
    "longitude",
    "accuracy",
    "age",
    "altitude",
    "altitudeAccuracy",
    "heading",
    "pressure",
    "speed",
    "source",
)
NETWORK_LISTS = ("bluetoothBeacons", "cellTowers", "wifiAccessPoints")

_POSITION: dict[str, Node] = {
    "latitude": Number(),
    "longitude": Number(),
    "accuracy": Number(),
    "age": Integer(),
    "altitude": Number(),
    "altitudeAccuracy": Number(),
    "heading": Number(),
    "pressure": Number(),
    "speed": Number(),
    "source": SOURCE,
}

BLUETOOTH = Record(
    {"macAddress": Text(), "age": Integer(), "name": Text(), "signalStrength": Integer()},
    required=("macAddress",),
)
_CELL: dict[str, Node] = {
    "radioType": RADIO,
    "mobileCountryCode": Integer(),
    "mobileNetworkCode": Integer(),
    "locationAreaCode": Integer(),
    "cellId": Integer(),
    "age": Integer(),
    "asu": Integer(),
    "primaryScramblingCode": Integer(),
    "serving": Integer(),
    "signalStrength": Integer(),
    "timingAdvance": Integer(),
}
CELL_V2 = Record(_CELL)
WIFI = Record(
    {
        "macAddress": Text(),
        "age": Integer(),
        "channel": Integer(),
        "frequency": Integer(),
        "radioType": Text(),
        "signalStrength": Integer(),
        "signalToNoiseRatio": Integer(),
        "ssid": Text(),
    },
    required=("macAddress",),
)

REPORT_V2 = Record(
    {
        "timestamp": EpochMillis(MIN_TIMESTAMP, MAX_TIMESTAMP),
        "radioType": RADIO,
        "position": Record(_POSITION),
        "bluetoothBeacons": Items(BLUETOOTH),
        "cellTowers": Items(CELL_V2),
        "wifiAccessPoints": Items(WIFI),
    }
)

_CELL_V1 = {**{k: v for k, v in _CELL.items() if k != "primaryScramblingCode"}, "psc": Integer()}
REPORT_V1 = Record(
    {
        "timestamp": EpochMillis(MIN_TIMESTAMP, MAX_TIMESTAMP),
        "radioType": RADIO,
        **_POSITION,
        "bluetoothBeacons": Items(BLUETOOTH),
        "cellTowers": Items(Record(_CELL_V1, rename={"psc": "primaryScramblingCode"})),
        "wifiAccessPoints": Items(WIFI),
    }
)

_BLUE_V0 = Record(
    {"key": Text(), "age": Integer(), "name": Text(), "signal": Integer()},
    rename={"key": "macAddress", "signal": "signalStrength"},
    required=("macAddress",),
)
_CELL_V0 = Record(
    {
        "radio": RADIO,
        "mcc": Integer(),
        "mnc": Integer(),
        "lac": Integer(),
        "cid": Integer(),
        "age": Integer(),
        "asu": Integer(),
        "psc": Integer(),
        "serving": Integer(),
        "signal": Integer(),
        "ta": Integer(),
    },
    rename={
        "radio": "radioType",
        "mcc": "mobileCountryCode",
        "mnc": "mobileNetworkCode",
        "lac": "locationAreaCode",
        "cid": "cellId",
        "psc": "primaryScramblingCode",
        "signal": "signalStrength",
        "ta": "timingAdvance",
    },
)
_WIFI_V0 = Record(
    {
        "key": Text(),
        "age": Integer(),
        "channel": Integer(),
        "frequency": Integer(),
        "radio": Text(),
        "signal": Integer(),
        "signalToNoiseRatio": Integer(),
        "ssid": Text(),
    },
    rename={"key": "macAddress", "radio": "radioType", "signal": "signalStrength"},
    required=("macAddress",),
)
REPORT_V0 = Record(
    {
        "lat": Number(),
        "lon": Number(),
        "time": IsoMillis(MIN_TIMESTAMP, MAX_TIMESTAMP),
        "accuracy": Number(),
        "age": Integer(),
        "altitude": Number(),
        "altitude_accuracy": Number(),
        "heading": Number(),
        "pressure": Number(),
        "radio": RADIO,
        "speed": Number(),
        "source": SOURCE,
        "blue": Items(_BLUE_V0),
        "cell": Items(_CELL_V0),
        "wifi": Items(_WIFI_V0),
    },
    rename={
        "lat": "latitude",
        "lon": "longitude",
        "time": "timestamp",
        "altitude_accuracy": "altitudeAccuracy",
        "radio": "radioType",
        "blue": "bluetoothBeacons",
        "cell": "cellTowers",
        "wifi": "wifiAccessPoints",
    },
)
