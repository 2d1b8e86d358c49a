"""What an endpoint's parser makes of one request: the reports to queue, and what it dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.intake.errors import ParseError


@dataclass(frozen=True)
class Report:
    """One report to queue, and the source it is routed by."""

    report: dict[str, Any]
    source: str


@dataclass(frozen=True)
class Submission:
    reports: list[Report]
    #: Reports left out, by reason (``no_networks``): counted, never silent.
    dropped: Mapping[str, int] = field(default_factory=dict)


#: Turns a parsed JSON document into a submission; raises `ParseError` for a bad document.
Parser = Callable[[Any], Submission]


def invalid(problems: Mapping[str, str]) -> ParseError:
    """The whole-request refusal of a document with wrong-typed values, listed by path."""
    shown = "; ".join(f"{path}: {why}" for path, why in problems.items())
    return ParseError(f"invalid document: {shown}", {"validation": dict(problems)})
