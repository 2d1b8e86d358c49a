"""The Ichnaea submit routes, declared: path, the name daily limits count under, the parser of
the version, the report schema and the success answer."""

from __future__ import annotations

from sluice.intake.http import Endpoint
from sluice.recipes.ichnaea.reports import parse_v0, parse_v1, parse_v2
from sluice.recipes.ichnaea.schemas import REPORT_V0, REPORT_V1, REPORT_V2

ENDPOINTS = (
    Endpoint(
        "/v1/submit",
        "v1.submit",
        parse_v0,
        REPORT_V0,
        success=204,
        summary="Submit reports in the v0 format (deprecated); 204 with no body",
        deprecated=True,
    ),
    Endpoint(
        "/v1/geosubmit",
        "v1.geosubmit",
        parse_v1,
        REPORT_V1,
        summary="Submit reports in the v1 geosubmit format (deprecated); 200 {}",
        deprecated=True,
    ),
    Endpoint(
        "/v2/geosubmit",
        "v2.geosubmit",
        parse_v2,
        REPORT_V2,
        summary="Submit reports in the v2 geosubmit format; 200 {}",
    ),
)
