"""Lenient validation of submitted JSON: declared fields, bad values dropped, wrong types refused.

A schema is a tree of nodes (`Record`, `Items`, `Number`, `Integer`, `Text`, `Vocabulary`,
`EpochMillis`, `IsoMillis`). Cleaning a document keeps what the schema declares and is good:

- unknown keys, null or missing fields, empty strings, NaN and ±infinity are dropped;
- a vocabulary value is lower-cased, rewritten by its aliases, and dropped if it is not a word
  of the vocabulary;
- a value of the wrong JSON type (``"macAddress": 10``, an object where a number goes) is a
  *problem*: the caller refuses the whole document and reports every problem by its path
  (``items.0.wifiAccessPoints.1.macAddress``), since such a client is broken, not sloppy.

The same nodes describe themselves as OpenAPI 3.0 schemas (`Node.openapi`), so the document a
service publishes is the one its validation applies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Protocol

#: At most this many problems are reported for one document: a response stays small whatever
#: the size of a broken batch.
MAX_PROBLEMS = 20


class _Drop:
    """What a node returns for a value it leaves out."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()


#: Where a value is: None for the document, else (the parent's path, key or index). Built
#: as a chain and rendered (``items.0.macAddress``) only for a problem: cleaning a document
#: formats no string for the values that are fine.
Path = tuple[Any, str | int] | None


def render(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(str(key))
    return ".".join(reversed(parts)) or "(document)"


@dataclass
class Problems:
    """The wrong-typed values of one document, by path."""

    found: dict[str, str] = field(default_factory=dict)

    def add(self, path: Path, message: str) -> _Drop:
        if len(self.found) < MAX_PROBLEMS:
            self.found.setdefault(render(path), message)
        return DROP

    def __bool__(self) -> bool:
        return bool(self.found)


#: Integers at least this large in magnitude may have been read as a float by a parser
#: that has no arbitrary-precision integers (orjson reads them so beyond 64 bits).
_EXACT_BOUND: Final = 2.0**63
_WATCH: ContextVar[bool] = ContextVar("sluice_lenient_watch_floats", default=False)


class Imprecise(Exception):
    """An integer field holds a float so large that it may be an integer literal a fast
    parser rounded: the document should be parsed again by one that keeps integers whole."""


@contextmanager
def watching_floats() -> Iterator[None]:
    """Within it, an `Integer` given a float of 2^63 or more raises `Imprecise`."""
    token = _WATCH.set(True)
    try:
        yield
    finally:
        _WATCH.reset(token)


#: A node's `clean`.
Cleaner = Callable[[Any, Path, Problems], Any]


class Node(Protocol):
    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        """The cleaned value, or `DROP`; a wrong type is added to `problems`."""

    def openapi(self) -> dict[str, Any]:
        """This node as an OpenAPI 3.0 schema."""


def _kind(value: Any) -> str:
    """A JSON value's type in the words a client knows."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: Any, path: Path, problems: Problems) -> float | int | _Drop:
    """A JSON number, or a string that reads as one (as the seed's colander types accept)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return problems.add(path, f"{_kind(value)} is not a number")
    if isinstance(value, int | float):
        return value
    try:
        number = float(value)
    except ValueError:
        return problems.add(path, f"{_shown(value)} is not a number")
    return int(number) if number.is_integer() and "." not in value else number


@dataclass(frozen=True)
class Number:
    """A float; NaN and ±infinity are dropped."""

    #: The type a value of which is kept as it is when finite (see `Record`'s fast path).
    exact: ClassVar[type] = float
    description: str = ""

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        kind = type(value)
        if kind is float:  # the common case first, without the general checks
            return value if math.isfinite(value) else DROP
        if value is None:
            return DROP
        number = _number(value, path, problems)
        if isinstance(number, _Drop):
            return DROP
        try:
            result = float(number)
        except OverflowError:  # an integer beyond any float
            return DROP
        return result if math.isfinite(result) else DROP

    def openapi(self) -> dict[str, Any]:
        return _described({"type": "number", "nullable": True}, self.description)


@dataclass(frozen=True)
class Integer:
    """An integer; a fractional number is cut to its integer part, NaN and ±infinity dropped."""

    exact: ClassVar[type] = int
    description: str = ""

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if type(value) is int:
            return value
        if value is None:
            return DROP
        number = _number(value, path, problems)
        if isinstance(number, _Drop):
            return DROP
        if isinstance(number, int):
            return number
        if abs(number) >= _EXACT_BOUND and _WATCH.get():
            raise Imprecise(render(path))
        return int(number) if math.isfinite(number) else DROP

    def openapi(self) -> dict[str, Any]:
        return _described({"type": "integer", "nullable": True}, self.description)


@dataclass(frozen=True)
class Text:
    """A string; the empty string is dropped."""

    exact: ClassVar[type] = str
    description: str = ""

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if type(value) is str:
            return value or DROP
        if value is None:
            return DROP
        if not isinstance(value, str):
            return problems.add(path, f"{_kind(value)} is not a string")
        return value

    def openapi(self) -> dict[str, Any]:
        return _described({"type": "string", "nullable": True}, self.description)


@dataclass(frozen=True)
class Vocabulary:
    """A string of a closed set, compared lower-cased; `aliases` rewrite words (``umts`` →
    ``wcdma``); anything else is dropped."""

    words: frozenset[str]
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: What each word and alias, as written in the vocabulary, becomes: clients send those.
    _known: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Only the lower-case ones: the general path lower-cases before it compares.
        known = {word: word for word in self.words if word == word.lower()}
        known.update(
            (alias, self.aliases.get(alias.lower(), alias.lower()))
            for alias in self.aliases
            if alias == alias.lower()
        )
        known = {given: word for given, word in known.items() if word in self.words}
        object.__setattr__(self, "_known", known)

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if type(value) is str:
            hit = self._known.get(value)
            if hit is not None:
                return hit
        text = _TEXT.clean(value, path, problems)
        if text is DROP:
            return DROP
        word = text.lower()
        word = self.aliases.get(word, word)
        return word if word in self.words else DROP

    def openapi(self) -> dict[str, Any]:
        known = sorted(self.words | set(self.aliases))
        return _described(
            {"type": "string", "nullable": True},
            f"one of {', '.join(known)} (any case); other values are ignored",
        )


_TEXT = Text()
_INTEGER = Integer()


def now_millis() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class EpochMillis:
    """Milliseconds since the epoch; a value outside (`lowest`, `highest`) becomes `now`."""

    lowest: int
    highest: int
    now: Callable[[], int] = now_millis

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if type(value) is int:  # the common case, as the general path below would take it
            return value if self.lowest < value < self.highest else self.now()
        before = len(problems.found)
        number = _INTEGER.clean(value, path, problems)
        if number is DROP:
            # Given but unusable (NaN): "now", as any bad time is. Missing or of the wrong
            # type: left out (the latter refuses the document anyway).
            return DROP if value is None or len(problems.found) > before else self.now()
        return number if self.lowest < number < self.highest else self.now()

    def openapi(self) -> dict[str, Any]:
        return _described(
            {"type": "integer", "nullable": True},
            "milliseconds since 1970-01-01 UTC; outside 2001-2286 it is taken as now",
        )


@dataclass(frozen=True)
class IsoMillis:
    """An ISO-8601 time (UTC unless it says otherwise) as epoch milliseconds; unreadable text
    or a time outside (`lowest`, `highest`) becomes `now`."""

    lowest: int
    highest: int
    now: Callable[[], int] = now_millis

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if value is None:
            return DROP
        if not isinstance(value, str):
            return problems.add(path, f"{_kind(value)} is not a string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return self.now()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        millis = int(moment.timestamp() * 1000)
        return millis if self.lowest < millis < self.highest else self.now()

    def openapi(self) -> dict[str, Any]:
        return _described(
            {"type": "string", "nullable": True},
            "ISO-8601 time; unreadable or outside 2001-2286 it is taken as now",
        )


@dataclass(frozen=True)
class Record:
    """An object with declared fields; unknown keys are ignored. `rename` gives fields their
    output names; a record without one of its `required` output fields, or with nothing left,
    is dropped."""

    fields: Mapping[str, Node]
    rename: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    #: Input name → (output name, node's clean, the type kept as it is), worked out once.
    _plan: dict[str, tuple[str, Cleaner, type | None]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        plan = {
            k: (self.rename.get(k, k), node.clean, getattr(node, "exact", None))
            for k, node in self.fields.items()
        }
        object.__setattr__(self, "_plan", plan)

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if type(value) is not dict:
            if value is None:
                return DROP
            return problems.add(path, f"{_kind(value)} is not an object")
        plan = self._plan
        out: dict[str, Any] = {}
        # Over the given keys (a report names a few of the declared fields, and unknown
        # keys are skipped by one lookup). Most values are already what their node keeps
        # (an int for an Integer, a finite float for a Number, a non-empty str for a Text):
        # those are taken as they are, without a call; the node's `clean` sees the rest.
        for name, given in value.items():
            step = plan.get(name)
            if step is None:
                continue
            output, clean, exact = step
            kind = type(given)
            if kind is exact and (kind is int or (given if kind is str else given - given == 0.0)):
                out[output] = given
                continue
            cleaned = clean(given, (path, name), problems)
            if cleaned is not DROP:
                out[output] = cleaned
        if not out:
            return DROP
        for name in self.required:
            if name not in out:
                return DROP
        return out

    def openapi(self) -> dict[str, Any]:
        return {
            "type": "object",
            "nullable": True,
            "properties": {name: node.openapi() for name, node in self.fields.items()},
            "additionalProperties": True,  # ignored, not refused
        }


@dataclass(frozen=True)
class Items:
    """An array of `item`; the items dropped are left out, and an empty array is dropped."""

    item: Node

    def clean(self, value: Any, path: Path, problems: Problems) -> Any:
        if value is None:
            return DROP
        if not isinstance(value, list):
            return problems.add(path, f"{_kind(value)} is not an array")
        clean = self.item.clean
        kept = []
        for i, one in enumerate(value):
            cleaned = clean(one, (path, i), problems)
            if cleaned is not DROP:
                kept.append(cleaned)
        return kept or DROP

    def openapi(self) -> dict[str, Any]:
        return {"type": "array", "nullable": True, "items": self.item.openapi()}


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description} if description else schema


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
