"""The routing stage: files of registered tables scanned in an Incoming location, written to
their lake tables, then moved to Archive or to Error with the reason (`flow.RouteFlow`).

A recipe gives it its names and key layouts (`options.Layout`; the Cubic recipe's is
`sluice.recipes.cubic.CUBIC_LAYOUT`); the runtime works its three steps on the work queue.
"""

from sluice.route.flow import ARCHIVE, ERROR, INGEST, RouteFlow
from sluice.route.options import KIND, Layout, RouteOptions

__all__ = ["ARCHIVE", "ERROR", "INGEST", "KIND", "Layout", "RouteFlow", "RouteOptions"]
