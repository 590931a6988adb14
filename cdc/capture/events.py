"""Change-event values as they go on the wire: Debezium's PostgreSQL change-event value plus our fields.

Assembled as text around the JSON of the row images (this is the hot path of capture); the shape is the one
`schemas.change_event.ChangeEvent` parses, which the unit tests check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schemas.change_event import CONNECTOR, SCHEMA_VERSION
from schemas.change_event import compact_json as _dumps


def event_id(system: str, commit_lsn: int, lsn: int, seq: int) -> str:
    """Stable across re-publication: commit LSN, change LSN, and the change's rank among those of its transaction
    sharing that LSN (a multi-row insert logs several rows in one WAL record)."""
    return f"{system}:{commit_lsn}:{lsn}:{seq}"


def key_of(row: dict[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    return {c: row.get(c) for c in columns}


@dataclass(frozen=True, slots=True)
class Transaction:
    commit_lsn: int
    commit_ts_ms: int
    xid: int


class EventEncoder:
    """Serialises the change events of one system.

    Only the row images go through the JSON encoder; the rest of the envelope is assembled from pieces that are
    fixed per system, per transaction and table, or plain integers (the hot path of capture)."""

    def __init__(self, system: str, source_name: str, database: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.system = system
        self.source_name = source_name
        self.database = database
        self.clock = clock
        self._id_prefix = _dumps(system)[1:-1]
        self._tail = f'"system":{_dumps(system)},"replay":null,"schema_version":{SCHEMA_VERSION}}}'
        self._txn: Transaction | None = None
        self._heads: dict[tuple[str, str], str] = {}

    def _head(self, schema: str, table: str, txn: Transaction) -> str:
        if txn is not self._txn:
            self._txn, self._heads = txn, {}
        head = self._heads.get((schema, table))
        if head is None:
            head = self._heads[(schema, table)] = (
                f'"source":{{"version":"1","connector":{_dumps(CONNECTOR)},"name":{_dumps(self.source_name)},'
                f'"db":{_dumps(self.database)},"schema":{_dumps(schema)},"table":{_dumps(table)},'
                f'"ts_ms":{txn.commit_ts_ms},"snapshot":"false","txId":{txn.xid},"lsn":')
        return head

    def encode(self, op: str, schema: str, table: str, before: dict[str, Any] | None,
               after: dict[str, Any] | None, txn: Transaction, lsn: int, seq: int, total_order: int,
               collection_order: int) -> bytes:
        commit = txn.commit_lsn
        return (
            f'{{"op":"{op}","before":{"null" if before is None else _dumps(before)},'
            f'"after":{"null" if after is None else _dumps(after)},'
            f'{self._head(schema, table, txn)}{lsn},"commit_lsn":{commit},'
            f'"sequence":"[\\"{commit}\\",\\"{lsn}\\"]"}},'
            f'"ts_ms":{int(self.clock() * 1000)},'
            f'"transaction":{{"id":"{txn.xid}:{commit}","total_order":{total_order},'
            f'"data_collection_order":{collection_order}}},'
            f'"event_id":"{self._id_prefix}:{commit}:{lsn}:{seq}",{self._tail}'
        ).encode()
