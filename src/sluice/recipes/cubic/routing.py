"""The Cubic recipe's routing flow: the general routing stage with Cubic's layout."""

from __future__ import annotations

from sluice.db import Database
from sluice.recipes.cubic.options import CubicOptions
from sluice.recipes.cubic.tables import CUBIC_LAYOUT
from sluice.route.flow import RouteFlow
from sluice.route.options import RouteOptions


def route_options(options: CubicOptions, max_attempts: int = 5) -> RouteOptions:
    return RouteOptions(
        incoming=options.incoming,
        archive=options.archive,
        error=options.error,
        lake=options.lake,
        endpoint_url=options.endpoint_url,
        listing_cap=options.listing_cap,
        max_attempts=max_attempts,
    )


def route_flow(db: Database, options: CubicOptions, max_attempts: int = 5) -> RouteFlow:
    """The routing flow over `options`' locations."""
    return RouteFlow(db, route_options(options, max_attempts), CUBIC_LAYOUT)
