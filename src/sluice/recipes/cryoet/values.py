"""Value getters of the CryoET recipe: small functions from an item to a column value.

They encode the portal's computed fields (reference/notes/seeds-cryoet.md §2, and
docs/cryoet-reference.md of this repository): URLs from keys, sizes summed under a prefix,
normalised enumerations, rounding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sluice.sync import Item
from sluice.sync.finders import dig, folder_of
from sluice.sync.spec import Getter
from sluice.sync.values import ValueRejected, check_strings, json_text, shown


def j(path: str, default: Any = None) -> Getter:
    """The value at a dotted path of the item's document."""
    return lambda item: dig(item.data, path, default)


def in_document(path: str) -> Getter:
    """The value at a dotted path of the whole document a list element came from."""
    return lambda item: dig(item.document, path)


def position_or(path: str) -> Getter:
    """The document's value if truthy, else the element's 1-based position."""
    return lambda item: dig(item.data, path) or item.index


def position(item: Item) -> int:
    return item.index


def parent_id(entity: str) -> Getter:
    return lambda item: item.ancestor(entity).id


def ancestor_value(entity: str, column: str) -> Getter:
    return lambda item: item.ancestor(entity)[column]


def _key_from(path_getter: Getter) -> Callable[[Item], str | None]:
    def key(item: Item) -> str | None:
        value = path_getter(item)
        if not value:
            return None
        return item.bucket.relative(str(value))

    return key


def s3_of(path_getter: Getter) -> Getter:
    """The s3:// URL of the key a getter gives (None stays None)."""
    key = _key_from(path_getter)
    return lambda item: item.bucket.s3_url(k) if (k := key(item)) else None


def https_of(path_getter: Getter) -> Getter:
    key = _key_from(path_getter)
    return lambda item: item.bucket.https_url(k) if (k := key(item)) else None


def size_of(path_getter: Getter) -> Getter:
    """The size of the object at the key, or the summed size of everything below it as a
    folder (an OME-Zarr directory); 0 when nothing is there, None without a key."""
    key = _key_from(path_getter)

    def size(item: Item) -> int | None:
        found = key(item)
        if found is None:
            return None
        exact = item.bucket.size(found)
        if exact is not None:
            return exact
        return item.bucket.size_under(found.rstrip("/") + "/")

    return size


def own_path(item: Item) -> str:
    return item.path


def own_folder(item: Item) -> str:
    return folder_of_item(item)


def folder_of_item(item: Item) -> str:
    path = item.path
    return path if path.endswith("/") else path[: path.rfind("/") + 1]


def https_key_photo(path: str) -> Getter:
    """An https URL for a key photo path given in the document (no existence check)."""
    return lambda item: (
        f"{item.bucket.https_prefix}/{value}" if (value := dig(item.data, path)) else None
    )


def trimmed(item: Item) -> Any:
    return item.data.strip() if isinstance(item.data, str) else item.data


def rounded(path: str, digits: int = 2) -> Getter:
    def value(item: Item) -> float | None:
        raw = dig(item.data, path)
        return None if raw is None else round(float(raw), digits)

    return value


def tilt_range(item: Item) -> float | None:
    low, high = dig(item.data, "tilt_range.min"), dig(item.data, "tilt_range.max")
    if low is None or high is None:
        return None
    return round(abs(float(high) - float(low)), 2)


def scale(index: int) -> Getter:
    """``"x,y,z"`` of the index-th entry of ``scales``."""

    def value(item: Item) -> str | None:
        scales = dig(item.data, "scales") or []
        if len(scales) <= index:
            return None
        entry = scales[index]
        return f"{entry['x']},{entry['y']},{entry['z']}"

    return value


def fiducial_status(item: Item) -> str:
    raw = dig(item.data, "fiducial_alignment_status")
    if raw is None or raw is False or str(raw).lower() == "false":
        return "NON_FIDUCIAL"
    if raw is True or str(raw).lower() == "true":
        return "FIDUCIAL"
    text = str(raw).upper()
    if text in {"FIDUCIAL", "NON_FIDUCIAL"}:
        return text
    # the engine says where: the object, the entity and the column
    raise ValueRejected(f"{shown(raw)} is neither true/false nor FIDUCIAL/NON_FIDUCIAL")


def reconstruction_method(item: Item) -> str:
    raw = dig(item.data, "reconstruction_method")
    return str(raw).replace(" ", "_") if raw else "Unknown"


def or_unknown(path: str) -> Getter:
    return lambda item: dig(item.data, path) or "Unknown"


def or_false(path: str) -> Getter:
    return lambda item: bool(dig(item.data, path) or False)


def pg_array_text(path: str) -> Getter:
    """A (nested) JSON list as PostgreSQL array literal text, e.g. ``{{1,0},{0,1}}``."""
    return lambda item: array_literal(raw) if (raw := dig(item.data, path)) is not None else None


_COMMA, _CLOSE = object(), object()


def array_literal(value: Any) -> str:
    """`value` as PostgreSQL array literal text: lists become braces, other values JSON. Built
    with a stack rather than recursion, as a list may nest as deep as its document."""
    check_strings(value)
    out: list[str] = []
    pending: list[Any] = [value]
    while pending:
        current = pending.pop()
        if current is _COMMA:
            out.append(",")
        elif current is _CLOSE:
            out.append("}")
        elif isinstance(current, list):
            out.append("{")
            pending.append(_CLOSE)
            for position, element in enumerate(reversed(current)):
                pending.extend((_COMMA, element) if position else (element,))
        else:
            out.append(json.dumps(current))
    return "".join(out)


def compact_json(path: str) -> Getter:
    return lambda item: json_text(raw) if (raw := dig(item.data, path)) is not None else None


def neuroglancer_config(item: Item) -> str | None:
    """The neuroglancer config named by the tomogram, as compact JSON (``{}`` if the file is
    missing or empty); NULL when the tomogram names none."""
    path = dig(item.data, "neuroglancer_config_path")
    if not path:
        return None
    key = item.bucket.relative(str(path))
    if not item.bucket.exists(key):
        return "{}"
    text = item.bucket.text(key)
    if not text.strip():
        return "{}"
    return json_text(item.bucket.parse(key, text))


def first_sibling(*patterns: str) -> Callable[[Item], str | None]:
    """The first key beside the item's file matching one of `patterns`, tried in order."""

    def key(item: Item) -> str | None:
        for pattern in patterns:
            found = item.bucket.glob(folder_of_item(item), pattern)
            if found:
                return found[0]
        return None

    return key


def run_row_id(item: Item) -> int | None:
    return item.ancestor("run").id


def _same_deposition_as_dataset(item: Item, document: Any) -> bool:
    dataset_deposition = item.ancestor("dataset")["deposition_id"]
    return bool(dig(document, "deposition_id") == dataset_deposition)


def is_author_submitted(item: Item) -> bool:
    """A tomogram submitted with its dataset's deposition (not added later by others)."""
    return _same_deposition_as_dataset(item, item.data)


def annotation_file_source(item: Item) -> str:
    """``dataset_author`` when the annotation came with the dataset's deposition, else
    ``portal_standard`` when the file says so, else ``community``."""
    if _same_deposition_as_dataset(item, item.document):
        return "dataset_author"
    if dig(item.data, "is_portal_standard"):
        return "portal_standard"
    return "community"


def dataset_publications(item: Item) -> Any:
    return dig(item.data, "cross_references.database_publications") or dig(
        item.data, "cross_references.publications"
    )


def size_of_folder(item: Item) -> int:
    """Total size of everything below the item's folder."""
    return item.bucket.size_under(folder_of_item(item))


def alignment_method(item: Item) -> Any:
    method = dig(item.data, "method_type")
    return None if method == "undefined" else method


def alignment_by_path(path: str) -> Getter:
    """The alignment of the same run whose metadata file is the one the document names."""

    def value(item: Item) -> int | None:
        document = item.document if item.document is not None else item.data
        raw = dig(document, path)
        if not raw:
            return None
        url = item.bucket.s3_url(item.bucket.relative(str(raw)))
        run_id = item.ancestor("run").id
        for row in item.sync.rows("alignment"):
            if row["run_id"] == run_id and row["s3_alignment_metadata"] == url:
                return row.id
        return None

    return value


def tiltseries_by_path(item: Item) -> int | None:
    """The tiltseries of the same run whose MRC file lies in the folder of
    ``tiltseries_path``; None if there is none."""
    raw = dig(item.data, "tiltseries_path")
    if not raw:
        return None
    key = item.bucket.relative(str(raw))
    folder = key[: key.rfind("/") + 1] if "/" in key else ""
    prefix = item.bucket.s3_url(folder)
    run_id = item.ancestor("run").id
    for row in item.sync.rows("tiltseries"):
        mrc = row["s3_mrc_file"]
        if row["run_id"] == run_id and isinstance(mrc, str) and mrc.startswith(prefix):
            return row.id
    return None


def frame_id(item: Item) -> int | None:
    order = dig(item.data, "frame_acquisition_order")
    if order is None:
        return None
    return item.sync.lookup("frame", run_id=item.ancestor("run").id, acquisition_order=order)


def folder_of_parent(item: Item) -> str:
    return folder_of(item.parent)
