"""Why an intake refuses a request, classified where it enters (see `sluice.errors`).

    TerminalError
     └── Refused                 the request cannot be taken as it is (an HTTP status, a reason)
          ├── ParseError         400: empty, broken gzip, bad charset, bad JSON, wrong types
          ├── TooLarge           413: the body, or what it inflates to, passes the bound
          └── LimitExceeded      403: the key's daily limit on this path is used up
    TransientError
     └── Unavailable             503 with Retry-After: the queue cannot take the data now
          ├── QueueDown          Redis does not answer (the cause is kept)
          └── Backlogged         the intake stream holds more than its bound

Each error knows its Google-style answer: status, domain, reason and message, plus optional
``details``. Errors are picklable. No message carries an API key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sluice.errors import TerminalError, TransientError


class Refused(TerminalError):
    """A request the intake will not take as it is."""

    status: ClassVar[int] = 400
    domain: ClassVar[str] = "global"
    reason: ClassVar[str] = "parseError"
    public: ClassVar[str] = "Parse Error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message, self.details))


class ParseError(Refused):
    """The body is empty, or cannot be decompressed, decoded, parsed or validated."""


class TooLarge(Refused):
    status = 413
    reason = "payloadTooLarge"
    public = "Payload Too Large"


class LimitExceeded(Refused):
    status = 403
    domain = "usageLimits"
    reason = "dailyLimitExceeded"
    public = "You have exceeded your daily limit."


class Unavailable(TransientError):
    """The queue cannot take the data now; the client should send it again later."""

    status: ClassVar[int] = 503
    domain: ClassVar[str] = "global"
    reason: ClassVar[str] = "serviceUnavailable"
    public: ClassVar[str] = "Service Unavailable"

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message, self.retry_after))


class QueueDown(Unavailable):
    """Redis did not answer or failed; the driver's error is the cause."""


class Backlogged(Unavailable):
    """The intake stream holds more entries than its bound: back-pressure, not loss."""
