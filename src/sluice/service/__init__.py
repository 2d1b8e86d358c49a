"""The service: one ASGI application over the ledger — a dashboard, a JSON API described by an
OpenAPI document, Prometheus metrics, health checks. It reads through the same API functions
as ``sluice status``; later flows mount their own routes on it (``extra_routes``)."""

from sluice.service.app import ServiceSettings, create_app

__all__ = ["ServiceSettings", "create_app"]
