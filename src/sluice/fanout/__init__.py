"""The fan-out: accepted reports from an intake stream to every export config, through
acknowledged Redis Streams, with batching, retries and dead letters (see docs/ichnaea.md)."""
