"""The datamap grid (ichnaea/models/content.py): 0.001° cells in four quarter tables split at
36°N and 5°E, keyed ``!II`` of the scaled latitude + 90000 and longitude + 180000. Pure."""

from __future__ import annotations

import struct

#: Scaled latitude (lat·1000) from which a cell is north, and longitude from which it is east.
NORTH_FROM = 36000
EAST_FROM = 5000
QUARTERS = ("ne", "nw", "se", "sw")


def scaled(lat: float, lon: float) -> tuple[int, int]:
    """round(lat·1000), round(lon·1000): Python's round, as the seed."""
    return round(lat * 1000), round(lon * 1000)


def quarter(lat_scaled: int, lon_scaled: int) -> str:
    north = "n" if lat_scaled >= NORTH_FROM else "s"
    east = "e" if lon_scaled >= EAST_FROM else "w"
    return north + east


def grid_id(lat_scaled: int, lon_scaled: int) -> bytes:
    return struct.pack("!II", lat_scaled + 90000, lon_scaled + 180000)


def decode_grid(grid: bytes) -> tuple[int, int]:
    lat, lon = struct.unpack("!II", grid)
    return lat - 90000, lon - 180000


def table(quarter_name: str) -> str:
    return f"datamap_{quarter_name}"
