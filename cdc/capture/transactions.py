"""From decoded pgoutput rows to what capture does with them: publish an event, or note a position the slot may
advance to. Pure (no I/O); the capture loop feeds it the rows of one peek in order.

- Changes of a transaction whose Origin names one of our appliers (`<origin prefix>...`) are dropped (no echo).
- A TRUNCATE produces no event: it is reported so the loop can log it.
- Logical messages outside transactions (our heartbeats, anyone's) are positions to advance past, never events.
- Everything that ended before `published_upto` was published by an earlier peek (the slot is advanced lazily):
  it is passed over without decoding its changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from cdc.capture.events import EventEncoder, ImageEncoder, Transaction, image_encoder, key_of
from cdc.capture.pgoutput import (
    Begin,
    Commit,
    Decoder,
    Delete,
    Insert,
    Message,
    Origin,
    Relation,
    Truncate,
    Update,
)

log = structlog.get_logger(component="capture")

TableName = tuple[str, str]  # (schema, table)


@dataclass(slots=True)  # per event: not frozen, which would cost three times as much to build
class Publish:
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Boundary:
    """The end of something the slot may advance past: a transaction (`commit_ts` set) or a standalone message."""

    lsn: int
    commit_ts: int | None = None  # microseconds since the Unix epoch
    events: int = 0
    origin: str | None = None  # set when the transaction was dropped as one of our appliers' writes
    message_prefix: str | None = None
    published_before: bool = False  # read again: it ended before `published_upto`


@dataclass(frozen=True, slots=True)
class Truncated:
    tables: tuple[TableName, ...]
    lsn: int


Output = Publish | Boundary | Truncated
Target = tuple[str, tuple[str, ...], bytes | None, ImageEncoder]

_PASSED_OVER = frozenset(b"IUDTOMY")  # in a transaction read again or dropped, only Relation and Commit matter


MAX_EVENT_BYTES = 1_000_000
"""Largest event published whole: below the broker's and the producer's default 1 MiB message limit, with room
for the record's key and headers."""


class Assembler:
    def __init__(self, *, encoder: EventEncoder, topic: Callable[[str], str], keys: Mapping[TableName, tuple[str, ...]],
                 origin_prefix: str, decoder: Decoder | None = None,
                 max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.encoder = encoder
        self.max_event_bytes = max_event_bytes
        self.topic = topic
        self.keys = keys
        self.origin_prefix = origin_prefix
        self.decoder = decoder or Decoder()
        self._targets: dict[int, Target] = {}  # relation id -> _target()
        self._key_columns: dict[int, tuple[str, ...]] = {}
        self.published_upto = 0
        self.reset()

    def reset(self) -> None:
        """Forget any transaction in progress (a new peek starts at a transaction boundary)."""
        self._txn: Transaction | None = None
        self._begin: Begin | None = None
        self._origin: str | None = None
        self._events = 0
        self._per_table: dict[int, int] = {}
        self._last_lsn = -1
        self._same_lsn = 0
        self._again = False

    @property
    def commit_ts(self) -> int:
        """Commit time of the transaction being read, in microseconds since the Unix epoch (0 outside one)."""
        return self._begin.commit_ts if self._begin is not None else 0

    def feed(self, lsn: int, data: bytes) -> Output | None:
        if (self._again or self._origin is not None) and data[0] in _PASSED_OVER:
            return None  # published before, or our appliers' writes: their changes are not even decoded
        message = self.decoder.decode(data)
        kind = type(message)
        if kind is Insert:
            return self._change("c", message.relation, None, message.new, lsn)
        if kind is Update:
            return self._change("u", message.relation, message.old, message.new, lsn)
        if kind is Delete:
            return self._change("d", message.relation, message.old, None, lsn)
        if kind is Begin:
            self.reset()
            self._begin = message
            self._txn = Transaction(message.final_lsn, message.commit_ts // 1000, message.xid)
            self._again = message.final_lsn < self.published_upto
            return None
        if kind is Commit:
            boundary = Boundary(message.end_lsn, message.commit_ts, self._events, self._origin,
                                published_before=self._again)
            self.reset()
            return boundary
        if kind is Origin:
            if message.name.startswith(self.origin_prefix):
                self._origin = message.name
            return None
        if kind is Relation:
            self._targets.pop(message.relation_id, None)
            self._key_columns.pop(message.relation_id, None)
            return None
        if kind is Truncate:
            if self._origin is not None:
                return None
            return Truncated(tuple((r.schema, r.table) for r in message.relations), lsn)
        if kind is Message and not message.transactional:
            return Boundary(lsn, message_prefix=message.prefix, published_before=lsn <= self.published_upto)
        return None  # Type messages, transactional logical messages

    def _change(self, op: str, relation: Relation, before: dict | None, after: dict | None,
                lsn: int) -> Publish | None:
        if self._origin is not None:
            return None
        txn = self._txn
        if txn is None:
            raise ValueError("a change outside a transaction")
        if lsn == self._last_lsn:
            self._same_lsn += 1
        else:
            self._last_lsn, self._same_lsn = lsn, 0
        self._events += 1
        rel_id = relation.relation_id
        collection_order = self._per_table.get(rel_id, 0) + 1
        self._per_table[rel_id] = collection_order
        target = self._targets.get(rel_id)
        if target is None:
            target = self._targets[rel_id] = self._target(relation)
        topic, key_columns, key_head, dumps = target
        encode = self.encoder.encode_images
        value = encode(op, relation.schema, relation.table, None if before is None else dumps(before),
                       None if after is None else dumps(after), txn, lsn, self._same_lsn, self._events,
                       collection_order)
        row = after if after is not None else before or {}
        if key_head is not None:  # one key column: its JSON object without building a dict
            key = key_head + dumps(row.get(key_columns[0])) + b"}"
        else:
            key = dumps(key_of(row, key_columns))
        if len(value) > self.max_event_bytes:
            # The broker would refuse it for ever; the worker reads the row itself, the key is all it needs.
            log.warning("event larger than the broker accepts: published with its key only", table=relation.table,
                        key=key_of(row, key_columns), size=len(value), limit=self.max_event_bytes)
            value = encode(op, relation.schema, relation.table,
                           None if before is None else dumps(key_of(before, key_columns)),
                           None if after is None else dumps(key_of(after, key_columns)), txn, lsn,
                           self._same_lsn, self._events, collection_order)
        return Publish(topic, key, value)

    def _target(self, relation: Relation) -> Target:
        """Topic, key columns, for a one-column key the start of the key's JSON (`{"no":`), and how to write the
        table's row images (and keys) as JSON."""
        columns = self._key_for(relation)
        dumps = image_encoder(c.type_oid for c in relation.columns)
        head = b"{" + dumps(columns[0]) + b":" if len(columns) == 1 else None
        return self.topic(relation.table), columns, head, dumps

    def _key_for(self, relation: Relation) -> tuple[str, ...]:
        columns = self._key_columns.get(relation.relation_id)
        if columns is None:
            columns = self.keys.get((relation.schema, relation.table))
            if columns is None:  # not a table we checked: fall back to the replica identity
                columns = tuple(c.name for c in relation.columns if c.in_identity) or relation.names
            self._key_columns[relation.relation_id] = columns
        return columns
