"""Ichnaea: the submit API of Mozilla's location service (v0/v1/v2 payloads, API keys, sampling,
daily limits) on sluice's intake queue."""
