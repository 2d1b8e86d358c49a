"""The Redis names of one fan-out, under the intake's prefix.

| key | what |
|---|---|
| ``<prefix>:intake`` | the intake stream, read by the consumer group ``fanout`` |
| ``<prefix>:export:<name>`` | one stream per export config, read by the group ``export`` |
| ``<prefix>:export:<name>:batches`` | hash: first id → last id of each batch in hand |
| ``<prefix>:export:<name>:attempts`` | hash: first id → tries so far of a batch in hand |
| ``<prefix>:dead:<name>`` | the export's dead letters: entries with ``reason``, ``attempts`` |
| ``<prefix>:delivery`` | hash of counters ``<name>:queued|skipped|delivered|retried|...`` |
"""

from __future__ import annotations

from dataclasses import dataclass

FANOUT_GROUP = "fanout"
EXPORT_GROUP = "export"
#: The delivery counters of an export, in the order status shows them.
COUNTERS = ("queued", "skipped", "delivered", "retried", "dead_lettered", "redriven", "batches")


@dataclass(frozen=True)
class Names:
    prefix: str

    @property
    def intake(self) -> str:
        return f"{self.prefix}:intake"

    @property
    def delivery(self) -> str:
        return f"{self.prefix}:delivery"

    def export(self, name: str) -> str:
        return f"{self.prefix}:export:{name}"

    def batches(self, name: str) -> str:
        return f"{self.prefix}:export:{name}:batches"

    def attempts(self, name: str) -> str:
        return f"{self.prefix}:export:{name}:attempts"

    def dead(self, name: str) -> str:
        return f"{self.prefix}:dead:{name}"
