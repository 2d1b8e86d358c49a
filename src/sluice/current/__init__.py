"""Current views: per ODS table, a PostgreSQL table of its current rows (``ods.edw_sample``),
built from a snapshot's LOAD files and kept up to date by its change files — the downstream
CDC merge, built in.

`apply_file` applies one file inside the caller's transaction; `view_lags` says how far behind
each view is (``sluice status``).
"""

from sluice.current.apply import apply_file, view_lags
from sluice.current.model import ApplyResult, ViewLag, ViewTarget, view_target

__all__ = [
    "ApplyResult",
    "ViewLag",
    "ViewTarget",
    "apply_file",
    "view_lags",
    "view_target",
]
