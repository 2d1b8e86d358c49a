"""Sources that fetch files from HTTP APIs into an Incoming location (the Cubic DMAP fetcher's
general part): result checks, streamed copies with retries, the feeds and datasets ledger, and
the flow that runs fetches on the runtime's schedule."""

from sluice.fetch.fetcher import ApiFetcher, ApiSource, FeedReport, query_stamp
from sluice.fetch.flow import KIND, FetchDeclaration, FetchFlow
from sluice.fetch.http import HttpOptions, LinkExpired
from sluice.fetch.repository import ApiFeed, FetchedDataset, FetchLedger
from sluice.fetch.results import Dataset, Invalid, check_results

__all__ = [
    "KIND",
    "ApiFeed",
    "ApiFetcher",
    "ApiSource",
    "Dataset",
    "FeedReport",
    "FetchDeclaration",
    "FetchFlow",
    "FetchLedger",
    "FetchedDataset",
    "HttpOptions",
    "Invalid",
    "LinkExpired",
    "check_results",
    "query_stamp",
]
