"""Logging of the ``sluice`` command: one handler on the root logger, in one of three forms.

* ``text`` on a terminal: `rich.logging.RichHandler` on the same console as the progress bars,
  so that a log line is printed above the live bars instead of through them;
* ``text`` elsewhere: plain lines, ``2026-12-01 08:36:12,345 INFO sluice.progress: load 7: ...``;
* ``json``: one JSON object per line with ``time``, ``level``, ``logger`` and ``message``, plus
  every field a caller passed as ``extra`` (the runner passes ``run_id`` and ``unit``), and
  ``error`` (and, with tracebacks on, ``traceback``) when an exception is logged.

Tracebacks of logged exceptions are printed only when asked for (``--debug``); otherwise the
exception is named at the end of its line, so that every record stays one line.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

#: Level names accepted by ``--log-level`` and ``SLUICE_LOG_LEVEL``.
LEVELS = ("debug", "info", "warning", "error", "critical")
#: Forms accepted by ``--log-format`` and ``SLUICE_LOG_FORMAT``.
FORMATS = ("text", "json")
#: The plain line format (tests and log shippers parse it: keep it stable).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries whose INFO and DEBUG records drown sluice's own.
NOISY = ("pgserver", "botocore", "urllib3", "s3transfer", "kombu", "amqp")

# The attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


@dataclass(frozen=True)
class LogOptions:
    level: int = logging.INFO
    format: str = "text"
    #: Print the traceback of logged exceptions (``--debug``).
    tracebacks: bool = False


def level_named(name: str) -> int:
    """The logging level of one of `LEVELS` (any case); ValueError for another name."""
    if name.lower() not in LEVELS:
        raise ValueError(name)
    return int(getattr(logging, name.upper()))


def setup(options: LogOptions, console: Console | None = None) -> None:
    """Send every record to one handler on stderr: a `RichHandler` on `console` when one is
    given (progress bars are shown on it), else plain or JSON lines."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(_handler(options, console))
    root.setLevel(options.level)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, options.level))


def _handler(options: LogOptions, console: Console | None) -> logging.Handler:
    handler: logging.Handler
    if options.format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter(tracebacks=options.tracebacks))
    elif console is not None:
        handler = RichHandler(
            console=console,
            show_path=False,
            markup=False,  # messages carry object keys and error texts: print them literally
            rich_tracebacks=options.tracebacks,
        )
        handler.setFormatter(BriefFormatter("%(message)s", tracebacks=options.tracebacks))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(BriefFormatter(TEXT_FORMAT, tracebacks=options.tracebacks))
    return handler


def describe(exc: BaseException) -> str:
    """An exception in one line: its class and its message."""
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BriefFormatter(logging.Formatter):
    """The standard formatter, with a logged exception named on the record's own line unless
    tracebacks are wanted."""

    def __init__(self, fmt: str, *, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        if self.tracebacks or exc is None:
            return super().format(record)
        brief = copy.copy(record)
        brief.msg, brief.args = f"{record.getMessage()} ({describe(exc)})", None
        brief.exc_info, brief.exc_text = None, None
        return super().format(brief)


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = describe(record.exc_info[1])
            if self.tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
