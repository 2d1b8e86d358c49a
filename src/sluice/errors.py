"""The one exception tree of sluice.

Every error is classified where it enters the program: either *terminal* (retrying the same
thing gives the same result: bad input, a wrong configuration) or *transient* (the world may
change: a lost connection, a deadlock, a throttled request). Workers retry only transient
errors, with backoff; a terminal error ends a load as ``errored`` with its message.

    SluiceError
     ├── TerminalError
     │    ├── ConfigError          the project file or the environment is wrong
     │    ├── BadInputError        an object cannot be loaded as it is (object, line, column, why)
     │    ├── ObjectGone           the object version named by a load no longer exists
     │    ├── SchemaError          a target table does not match its declaration
     │    └── IllegalTransition    a status change the state machine does not allow
     └── TransientError
          ├── StoreUnavailable     the object store failed or throttled
          ├── DatabaseUnavailable  the database failed, or asked for the statement to be retried
          └── LeaseLost            another worker took over a load after its lease expired

Errors are picklable, so they can cross process boundaries (Celery workers, multiprocessing).
"""

from __future__ import annotations

from typing import Any


class SluiceError(Exception):
    """Base class of every error sluice raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message,))


class TerminalError(SluiceError):
    """Retrying will not help: the input or the configuration must change first."""


class TransientError(SluiceError):
    """The same operation may succeed later; retried with backoff."""


class ConfigError(TerminalError):
    """The project file, a command-line option or an environment variable is wrong."""


class SchemaError(TerminalError):
    """A target table or view does not match its declaration."""


class ObjectGone(TerminalError):
    """The object version a load names was replaced or deleted before it could be read."""


class IllegalTransition(TerminalError):
    """A load was asked to move between two statuses that the state machine does not connect."""


class BadInputError(TerminalError):
    """An object cannot be loaded as it is.

    Carries where the problem is (object, line, column) and why, so that the message on the
    ledger row is enough to find and fix the input.
    """

    def __init__(
        self,
        reason: str,
        *,
        obj: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.obj = obj
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        where = [part for part in (self.obj,) if part]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def located(self, *, obj: str | None = None, line_offset: int = 0) -> BadInputError:
        """The same error, named after `obj` and with its line moved by `line_offset`."""
        line = None if self.line is None else self.line + line_offset
        return BadInputError(self.reason, obj=obj or self.obj, line=line, column=self.column)

    def detail(self) -> dict[str, Any]:
        """The structured form stored on the ledger row."""
        return {"object": self.obj, "line": self.line, "column": self.column, "reason": self.reason}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_bad_input, (self.reason, self.obj, self.line, self.column))


def _rebuild_bad_input(
    reason: str, obj: str | None, line: int | None, column: str | None
) -> BadInputError:
    return BadInputError(reason, obj=obj, line=line, column=column)


class StoreUnavailable(TransientError):
    """The object store did not answer, or asked us to slow down."""


class DatabaseUnavailable(TransientError):
    """The database connection failed, or the server asked for the statement to be retried."""


class LeaseLost(TransientError):
    """Another worker owns this load now; the current attempt must stop without committing."""
