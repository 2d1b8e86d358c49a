"""Station keys, shards and the seed's codes (ichnaea/models/mac.py, cell.py, constants).

- A wifi or Bluetooth station is known by its MAC, 12 lower-case hex digits, and lives in shard
  ``mac[4]`` (the fifth hex digit, as the code does; the seed's docs say the first) of 16.
- A cell is known by (radio, mcc, mnc, lac, cid), packed ``!bHHHI`` (11 bytes), and lives in
  the table of its radio; its area is (radio, mcc, mnc, lac), packed ``!bHHH`` (7 bytes). As
  text a cell key reads ``lte:262:1:4:12345``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Literal

Kind = Literal["wifi", "blue", "cell"]
KINDS: tuple[Kind, ...] = ("wifi", "blue", "cell")

#: ReportSource of the seed.
SOURCES = {"fixed": 0, "gnss": 3, "fused": 6, "query": 9}
SOURCE_NAMES = {code: name for name, code in SOURCES.items()}
GNSS, QUERY = SOURCES["gnss"], SOURCES["query"]

#: Radio codes of the seed; cdma (1) is never stored.
RADIOS = {"gsm": 0, "cdma": 1, "wcdma": 2, "lte": 3}
CELL_RADIOS = ("gsm", "wcdma", "lte")

_SEPARATORS = re.compile(r"[:.-]")
_MAC = re.compile(r"[0-9a-f]{12}")
_BAD_MACS = frozenset({"000000000000", "ffffffffffff", "01005e901000"})


#: MACs seen lately and what they normalise to: a station is seen again and again, and a look-up
#: costs a tenth of the regular expression. Emptied when full, so it stays bounded.
_NORMAL: dict[str, str | None] = {}
_NORMAL_MAX = 200_000


def normal_mac(text: str) -> str | None:
    """The MAC in `text` as 12 lower-case hex digits, or None when it is not a usable one."""
    try:
        return _NORMAL[text]
    except KeyError:
        pass
    if len(_NORMAL) >= _NORMAL_MAX:
        _NORMAL.clear()
    mac = _NORMAL[text] = _normal_mac(text)
    return mac


def _normal_mac(text: str) -> str | None:
    mac = text
    if not _MAC.fullmatch(mac):  # most MACs come normal already: one match, no copies
        mac = _SEPARATORS.sub("", text).lower()
        if not _MAC.fullmatch(mac):
            return None
    return None if mac in _BAD_MACS else mac


def mac_shard(mac: str) -> int:
    return int(mac[4], 16)


@dataclass(frozen=True, order=True)
class CellKey:
    radio: str
    mcc: int
    mnc: int
    lac: int
    cid: int

    def packed(self) -> bytes:
        return struct.pack("!bHHHI", RADIOS[self.radio], self.mcc, self.mnc, self.lac, self.cid)

    def area(self) -> bytes:
        return area_id(self.radio, self.mcc, self.mnc, self.lac)

    def text(self) -> str:
        return f"{self.radio}:{self.mcc}:{self.mnc}:{self.lac}:{self.cid}"

    @classmethod
    def parse(cls, text: str) -> CellKey:
        parts = text.split(":")
        if len(parts) != 5 or parts[0] not in CELL_RADIOS:
            raise ValueError(f"a cell key is radio:mcc:mnc:lac:cid (radio gsm|wcdma|lte): {text!r}")
        try:
            mcc, mnc, lac, cid = (int(p) for p in parts[1:])
        except ValueError as exc:
            raise ValueError(f"mcc, mnc, lac and cid of a cell key are integers: {text!r}") from exc
        return cls(parts[0], mcc, mnc, lac, cid)

    @classmethod
    def unpack(cls, raw: bytes) -> CellKey:
        radio, mcc, mnc, lac, cid = struct.unpack("!bHHHI", raw)
        return cls(_RADIO_NAMES[radio], mcc, mnc, lac, cid)


_RADIO_NAMES = {code: name for name, code in RADIOS.items()}


def area_id(radio: str, mcc: int, mnc: int, lac: int) -> bytes:
    return struct.pack("!bHHH", RADIOS[radio], mcc, mnc, lac)


def shard_of(kind: Kind, key: str) -> str:
    """The shard table (``wifi_shard_3``, ``blue_shard_a``, ``cell_lte``) of a station key."""
    if kind == "cell":
        return f"cell_{key.split(':', 1)[0]}"
    return f"{kind}_shard_{key[4]}"


def shard_tables(kind: Kind) -> tuple[str, ...]:
    if kind == "cell":
        return tuple(f"cell_{radio}" for radio in CELL_RADIOS)
    return tuple(f"{kind}_shard_{digit:x}" for digit in range(16))
