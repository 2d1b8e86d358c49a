"""The HTTP intake of submitted data: bodies read within bounds (gzip inflated against bombs),
lenient validation, API keys with sampling and daily limits, and the durable intake queue (a
Redis Stream) with back-pressure and counters. Recipes declare their endpoints
(`sluice.intake.http.Endpoint`); this package does the work."""
