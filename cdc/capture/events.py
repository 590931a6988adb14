"""Change-event values as they go on the wire: Debezium's PostgreSQL change-event value plus our fields.

Assembled as bytes around the JSON of the row images (this is the hot path of capture); the shape is the one
`schemas.change_event.ChangeEvent` parses, which the unit tests check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cdc.values.vocabulary import FLOAT4, FLOAT8, JSON, JSONB
from schemas.change_event import CONNECTOR, SCHEMA_VERSION
from schemas.change_event import compact_json as _dumps

ImageEncoder = Callable[[Any], bytes]

# orjson writes what `compact_json` writes for strings (every code point), 64-bit integers, booleans and null, but
# not for floats (`1e-7` where json writes `1e-07`): values of these types, and of JSON documents (which may hold
# floats), keep json's encoder so that the bytes on the wire stay the same.
_NOT_LIKE_JSON = frozenset({FLOAT4, FLOAT8, JSON, JSONB})

# op, before, after, source up to its "lsn" (per transaction and table), lsn, the transaction's commit pieces, ...
_EVENT = (b'{"op":"%b","before":%b,"after":%b,%b%d%b%d\\"]"},"ts_ms":%d,%b%d,"data_collection_order":%d},%b%d:%d",%b')


def exact_json(value: Any) -> bytes:
    return _dumps(value).encode()


def image_encoder(type_oids: Iterable[int]) -> ImageEncoder:
    """How to write row images of a table with these column types: orjson (seven times faster) when it writes the
    same bytes as `compact_json` for every value such a row can hold."""
    return exact_json if _NOT_LIKE_JSON.intersection(type_oids) else orjson.dumps


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

    Only the row images go through a JSON encoder; the rest of the envelope is one bytes format filled with pieces
    that are fixed per system, per transaction and table, or plain integers (the hot path of capture)."""

    def __init__(self, system: str, source_name: str, database: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.system = system
        self.source_name = source_name
        self.database = database
        self.clock = clock
        self._id_prefix = _dumps(system)[1:-1].encode()
        self._tail = f'"system":{_dumps(system)},"replay":null,"schema_version":{SCHEMA_VERSION}}}'.encode()
        self._txn: Transaction | None = None
        self._heads: dict[tuple[str, str], bytes] = {}
        self._sequence = self._transaction = self._event_id = b""  # the transaction's commit pieces (`_head`)

    def _head(self, schema: str, table: str, txn: Transaction) -> bytes:
        if txn is not self._txn:
            commit = txn.commit_lsn
            self._txn, self._heads = txn, {}
            self._sequence = b',"commit_lsn":%d,"sequence":"[\\"%d\\",\\"' % (commit, commit)
            self._transaction = b'"transaction":{"id":"%d:%d","total_order":' % (txn.xid, commit)
            self._event_id = b'"event_id":"%b:%d:' % (self._id_prefix, commit)
        head = self._heads.get((schema, table))
        if head is None:
            head = self._heads[(schema, table)] = (
                f'"source":{{"version":"1","connector":{_dumps(CONNECTOR)},"name":{_dumps(self.source_name)},'
                f'"db":{_dumps(self.database)},"schema":{_dumps(schema)},"table":{_dumps(table)},'
                f'"ts_ms":{txn.commit_ts_ms},"snapshot":"false","txId":{txn.xid},"lsn":').encode()
        return head

    def encode(self, op: str, schema: str, table: str, before: dict[str, Any] | None,
               after: dict[str, Any] | None, txn: Transaction, lsn: int, seq: int, total_order: int,
               collection_order: int) -> bytes:
        return self.encode_images(op, schema, table, None if before is None else exact_json(before),
                                  None if after is None else exact_json(after), txn, lsn, seq, total_order,
                                  collection_order)

    def encode_images(self, op: str, schema: str, table: str, before: bytes | None, after: bytes | None,
                      txn: Transaction, lsn: int, seq: int, total_order: int, collection_order: int) -> bytes:
        """`encode` with the row images already written as JSON."""
        head = self._head(schema, table, txn)
        return _EVENT % (
            op.encode(), b"null" if before is None else before, b"null" if after is None else after, head, lsn,
            self._sequence, lsn, int(self.clock() * 1000), self._transaction, total_order, collection_order,
            self._event_id, lsn, seq, self._tail)
