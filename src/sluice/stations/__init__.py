"""The Ichnaea internal exporter's stage: reports into per-station observations, and the
station tables (wifi and Bluetooth in 16 shards each, cells per radio), cell areas, the datamap
grid and the daily counters kept current by the seed's station algorithm — exactly once per
batch, without deadlocks. See docs/stations.md."""

from sluice.stations.algorithm import Station, Transition, station_blocked, update_station
from sluice.stations.observations import Observation, transform
from sluice.stations.reads import show_station, stats
from sluice.stations.simulate import simulate
from sluice.stations.updater import BatchResult, apply_batch

__all__ = [
    "BatchResult",
    "Observation",
    "Station",
    "Transition",
    "apply_batch",
    "show_station",
    "simulate",
    "station_blocked",
    "stats",
    "transform",
    "update_station",
]
