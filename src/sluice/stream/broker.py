"""What the stream batcher needs of a broker: read its own un-acknowledged messages back, read
new ones, acknowledge, dead-letter (atomically with the acknowledgement) and publish."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One message: its broker id (ordered) and its bytes."""

    id: str
    data: bytes


class Broker(Protocol):
    def prepare(self, stream: str, group: str) -> None:
        """Create the stream and the consumer group if they do not exist."""
        ...

    def pending(self, stream: str, group: str, consumer: str, count: int) -> list[Message]:
        """The messages delivered to `consumer` and not acknowledged, oldest first."""
        ...

    def read(
        self, stream: str, group: str, consumer: str, count: int, block_seconds: float
    ) -> list[Message]:
        """At most `count` messages never delivered to the group, waiting up to
        `block_seconds` for the first."""
        ...

    def ack(self, stream: str, group: str, ids: Sequence[str]) -> None: ...

    def dead_letter(
        self, stream: str, group: str, message: Message, reason: str, dead: str
    ) -> None:
        """Move `message` to the stream `dead` with `reason`, and acknowledge it, at once."""
        ...

    def publish(self, stream: str, payloads: Iterable[bytes]) -> int: ...

    def hold(self, stream: str, consumer: str, token: str, seconds: float) -> bool:
        """Take, or renew, the right to batch `stream` as `consumer` for `seconds`: two
        processes sharing one consumer's pending messages would mix their batches."""
        ...

    def holder(self, stream: str, consumer: str) -> str | None:
        """The token of the hold on `stream`, if any."""
        ...

    def release(self, stream: str, consumer: str, token: str) -> None:
        """Give the hold up, if `token` still has it."""
        ...

    def close(self) -> None: ...


def id_part(message_id: str) -> str:
    """A message id as an object name sorts: ``1700000000000-0`` → ``1700000000000-000000``
    (millisecond and sequence parts padded, so names sort in message order)."""
    millis, _, seq = message_id.partition("-")
    if millis.isdigit() and seq.isdigit():
        return f"{int(millis):013d}-{int(seq):06d}"
    return message_id
