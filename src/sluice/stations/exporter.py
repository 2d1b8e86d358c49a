"""The fan-out's ``internal`` exporter: a batch of an export stream → `apply_batch`.

Importing this module registers the kind with `sluice.fanout.exporters` (which imports it on
first use of the kind). The batch id given to
`apply_batch` is ``<export>:<first entry id>``, the same on every try of the batch, so a batch
sent again after a crash is applied once. The exporter looks ahead (`LooksAhead`): the next
batch is prepared while the current one's stations are written (`sluice.stations.ahead`).

The database is the context's ``database`` (the fan-out's), else the config's URL (a
PostgreSQL URL). The datamap is kept unless the context says ``map_content = False``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sluice.db import Database, DatabaseOptions, check_url
from sluice.errors import ConfigError, TerminalError
from sluice.fanout.configs import ExportConfig
from sluice.fanout.exporters import Batch, ExportContext, register
from sluice.stations.ahead import Lookahead
from sluice.stations.updater import apply_batch


class Internal:
    def __init__(self, config: ExportConfig, context: ExportContext) -> None:
        self._own: Database | None = None
        if context.database is not None:
            self.database = context.database
        elif config.url:
            self._own = self.database = Database.open(DatabaseOptions(url=config.url, pool_size=2))
        else:
            raise ConfigError(
                f"export {config.name}: the internal exporter needs the fan-out's database "
                "or a PostgreSQL URL"
            )
        self.map_content = context.map_content
        self._ahead = Lookahead(map_content=self.map_content)

    def ahead(self, batch: Batch) -> None:
        """The batch sent next: prepared while the current one's stations are written."""
        self._ahead.offer(self._batch_id(batch), lambda: self._reports(batch))

    def send(self, batch: Batch) -> None:
        batch_id = self._batch_id(batch)
        apply_batch(
            self.database,
            batch_id,
            self._ahead.take(batch_id) or self._reports(batch),
            today=datetime.now(UTC).date(),
            map_content=self.map_content,
            meanwhile=self._ahead.prepare,
        )

    @staticmethod
    def _batch_id(batch: Batch) -> str:
        return f"{batch.export}:{batch.batch_id}"

    @staticmethod
    def _reports(batch: Batch) -> list[dict[str, Any]]:
        reports: list[dict[str, Any]] = []
        for item in batch.items:
            try:
                report = json.loads(item.report)
            except ValueError as exc:
                raise TerminalError(
                    f"export {batch.export}, entry {item.iid}: the report is not JSON: {exc}"
                ) from exc
            if not isinstance(report, dict):
                raise TerminalError(
                    f"export {batch.export}, entry {item.iid}: the report is not a JSON object"
                )
            reports.append(report)
        return reports

    def close(self) -> None:
        if self._own is not None:
            self._own.close()


def _check(config: ExportConfig) -> None:
    """An internal export's URL is empty (the fan-out's database) or a PostgreSQL URL."""
    if config.url:
        check_url(config.url)


register("internal", Internal, _check)
