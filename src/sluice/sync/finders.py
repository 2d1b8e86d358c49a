"""Finders: how an entity's items are found below a parent row, on the in-memory listing.

Each is a small frozen declaration; calling it with a parent row and the bucket view returns
the items. Paths are relative to the parent's folder (the folder of the parent's file, if the
parent came from a file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.sync.spec import Item, Row
from sluice.sync.view import BucketView, SyncError


def folder_of(row: Row | None) -> str:
    """The folder a row's item lives in (its own folder, or the folder of its file)."""
    if row is None:
        return ""
    path = row.item.path
    return path if path.endswith("/") else path[: path.rfind("/") + 1]


def join(folder: str, below: str) -> str:
    if not below:
        return folder
    return folder + below.strip("/") + "/"


def dig(document: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path of a JSON document, or `default` if any step is missing."""
    value = document
    for step in path.split(".") if path else ():
        if not isinstance(value, dict) or step not in value:
            return default
        value = value[step]
    return value


@dataclass(frozen=True)
class Subfolders:
    """Folders directly below the parent's folder (and `below`) that hold a `marker` file; the
    marker is the item's document."""

    marker: str
    below: str = ""

    def __call__(self, parent: Row | None, view: BucketView) -> Sequence[Item]:
        base = join(folder_of(parent), self.below)
        found = [folder for folder in view.folders(base) if view.exists(folder + self.marker)]
        return [Item(path=folder, data=view.json(folder + self.marker)) for folder in found]


@dataclass(frozen=True)
class Files:
    """Files below the parent's folder whose relative path matches a glob.

    With `parse`, each file's JSON is the item's document; with `each`, every element of that
    list in the document is an item of its own; with `first`, only the first match counts."""

    pattern: str
    below: str = ""
    parse: bool = True
    first: bool = False
    each: str | None = None

    def __call__(self, parent: Row | None, view: BucketView) -> Sequence[Item]:
        keys = view.glob(join(folder_of(parent), self.below), self.pattern)
        if self.first:
            keys = keys[:1]
        items: list[Item] = []
        for key in keys:
            document = view.json(key) if self.parse else None
            if self.each is None:
                items.append(Item(path=key, data=document))
            else:
                items.extend(_elements(view, key, document, self.each))
        return items


@dataclass(frozen=True)
class Folders:
    """Folders directly below the parent's folder (and `below`) whose name fully matches a
    regex; its named groups are kept on the item."""

    pattern: str
    below: str = ""

    def __call__(self, parent: Row | None, view: BucketView) -> Sequence[Item]:
        regex = re.compile(self.pattern)
        base = join(folder_of(parent), self.below)
        items = []
        for folder in view.folders(base):
            match = regex.fullmatch(folder[len(base) : -1])
            if match:
                items.append(Item(path=folder, groups=match.groupdict()))
        return items


@dataclass(frozen=True)
class Elements:
    """Elements of a list inside a document: by default the parent's own document; with
    `whole`, the whole document the parent itself came from (for a parent that is a list
    element); with `source`, a document at a key relative to the parent's folder (no such file
    means no items).

    `where` keeps elements satisfying a predicate; `same` keeps elements whose field equals a
    column of the parent row; `distinct` keeps the first element per value of a field."""

    path: str
    source: str | None = None
    whole: bool = False
    where: Callable[[Any], bool] | None = None
    same: tuple[str, str] | None = None
    distinct: str | None = None

    def __call__(self, parent: Row | None, view: BucketView) -> Sequence[Item]:
        if self.source is not None:
            key = folder_of(parent) + self.source
            if not view.exists(key):
                return []
            document = view.json(key)
        else:
            assert parent is not None
            key = parent.item.path
            document = parent.item.document if self.whole else parent.item.data
        items = _elements(view, key, document, self.path)
        if self.where is not None:
            items = [item for item in items if self.where(item.data)]
        if self.same is not None:
            field_name, column = self.same
            assert parent is not None
            items = [i for i in items if dig(i.data, field_name) == parent[column]]
        if self.distinct is not None:
            seen: set[Any] = set()
            unique = []
            for item in items:
                value = dig(item.data, self.distinct)
                if value not in seen:
                    seen.add(value)
                    unique.append(item)
            items = unique
        return items


def _elements(view: BucketView, key: str, document: Any, path: str) -> list[Item]:
    values = dig(document, path)
    if values is None:
        return []
    if not isinstance(values, list):
        where = view.store.uri(view.source_of(document) or key)
        raise SyncError(f"{where}: {path} should be a list, found {type(values).__name__}")
    return [
        Item(path=key, data=value, document=document, index=position)
        for position, value in enumerate(values, start=1)
    ]
