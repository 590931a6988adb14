"""A decoder of pgoutput (logical replication protocol v1) messages, as returned by
`pg_logical_slot_peek_binary_changes(..., 'proto_version', '1', ...)`.

Pure: bytes in, message objects out. A `Decoder` keeps the relation cache that Relation messages fill and that
Insert/Update/Delete/Truncate refer to by relation id. Tuple values arrive in text form and are converted to
JSON-ready values by type OID (`cdc.values.reading`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from cdc.values.reading import Converter, as_text, converter

try:  # the C twin of walk_columns, when it could be built (setup.py)
    from cdc.capture._tuples import walk as _walk
except ImportError:  # pragma: no cover - no compiler at install time
    _walk = None

NATIVE = _walk is not None  # said once at capture's start: without the C twin capture costs more CPU per event

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since the Unix epoch

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_BEGIN = struct.Struct(">QqI")  # final LSN, commit time, xid
_COMMIT = struct.Struct(">bQQq")  # flags, commit LSN, end LSN, commit time
_MESSAGE = struct.Struct(">bQ")  # flags, LSN
_COLUMN = struct.Struct(">Ii")  # type OID, type modifier


class PgOutputError(ValueError):
    """A message the decoder cannot read (truncated, unknown tag, unknown relation)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int = -1
    in_identity: bool = False


@dataclass(frozen=True, slots=True)
class Relation:
    relation_id: int
    schema: str
    table: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]
    names: tuple[str, ...] = field(repr=False, compare=False, default=())
    converters: tuple[Converter | None, ...] = field(repr=False, compare=False, default=())  # None: keep text
    decoding: tuple[tuple[str, Converter | None], ...] = field(repr=False, compare=False, default=())


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int  # LSN of the commit record
    commit_ts: int  # microseconds since the Unix epoch
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int  # first LSN after the commit record: where a slot may advance to skip this transaction
    commit_ts: int


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class TypeInfo:
    type_oid: int
    schema: str
    name: str


@dataclass(slots=True)  # per row: not frozen, which would cost three times as much to build
class Insert:
    relation: Relation
    new: dict[str, Any]


@dataclass(slots=True)  # per row: not frozen, which would cost three times as much to build
class Update:
    relation: Relation
    old: dict[str, Any] | None  # present with REPLICA IDENTITY FULL ('O') or when the key changed ('K')
    new: dict[str, Any]
    old_kind: str | None = None  # 'O' whole old row, 'K' key columns only, None absent
    unchanged: frozenset[str] = frozenset()  # unchanged TOASTed columns not recoverable: left out of `new`


@dataclass(slots=True)  # per row: not frozen, which would cost three times as much to build
class Delete:
    relation: Relation
    old: dict[str, Any]
    old_kind: str  # 'O' or 'K'


@dataclass(frozen=True, slots=True)
class Truncate:
    relations: tuple[Relation, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class Message:
    """A logical decoding message (`pg_logical_emit_message`)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Decoded = Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | Message

_UNCHANGED = object()  # marker for 'u' (unchanged TOAST) while reading a tuple


class Decoder:
    """Decodes one message at a time; keeps the relations (and types) announced so far."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, TypeInfo] = {}

    def decode(self, data: bytes) -> Decoded:
        if not data:
            raise PgOutputError("empty message")
        tag = data[0]
        try:
            handler = _HANDLERS[tag]
        except KeyError:
            raise PgOutputError(f"unknown pgoutput message type {chr(tag)!r}") from None
        try:
            return handler(self, data)
        except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, PgOutputError):
                raise
            raise PgOutputError(f"malformed {chr(tag)!r} message: {exc}") from None

    # -------------------------------------------------------------- reading primitives

    def _string(self, data: bytes, pos: int) -> tuple[str, int]:
        end = data.index(0, pos)
        return data[pos:end].decode(self.encoding), end + 1

    def _relation(self, relation_id: int) -> Relation:
        try:
            return self.relations[relation_id]
        except KeyError:
            raise PgOutputError(f"change for relation {relation_id} before its Relation message") from None

    def _tuple(self, data: bytes, pos: int, relation: Relation) -> tuple[dict[str, Any], int, bool]:
        """(values by column name, position after the tuple, whether an unchanged TOAST marker is among them).
        The hot path of capture: `walk_columns`, or its C twin when it was built."""
        (count,) = _I16.unpack_from(data, pos)
        pos += 2
        columns = relation.decoding
        if count != len(columns):
            if count > len(columns):
                raise PgOutputError(f"tuple of {count} columns for {relation.schema}.{relation.table} "
                                    f"with {len(columns)} known columns")
            columns = columns[:count]
        if self.encoding == "utf-8":
            walked = _walk(data, pos, columns, _UNCHANGED) if _walk is not None else None
            values, pos, unchanged = walked or walk_columns(data, pos, columns)
        else:
            values, pos, unchanged = walk_columns(data, pos, columns, self.encoding)
        if pos > len(data):
            raise PgOutputError("tuple value runs past the end of the message")
        return values, pos, unchanged

    # -------------------------------------------------------------- messages

    def _begin(self, data: bytes) -> Begin:
        final_lsn, ts, xid = _BEGIN.unpack_from(data, 1)
        return Begin(final_lsn, ts + PG_EPOCH_US, xid)

    def _commit(self, data: bytes) -> Commit:
        flags, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(data, 1)
        return Commit(flags, commit_lsn, end_lsn, ts + PG_EPOCH_US)

    def _origin(self, data: bytes) -> Origin:
        (lsn,) = struct.unpack_from(">Q", data, 1)
        name, _ = self._string(data, 9)
        return Origin(lsn, name)

    def _relation_message(self, data: bytes) -> Relation:
        (relation_id,) = _U32.unpack_from(data, 1)
        schema, pos = self._string(data, 5)
        table, pos = self._string(data, pos)
        identity = chr(data[pos])
        (count,) = _I16.unpack_from(data, pos + 1)
        pos += 3
        columns = []
        for _ in range(count):
            flags = data[pos]
            name, pos = self._string(data, pos + 1)
            type_oid, modifier = _COLUMN.unpack_from(data, pos)
            pos += 8
            columns.append(Column(name, type_oid, modifier, bool(flags & 1)))
        converters = tuple(converter(c.type_oid) for c in columns)
        names = tuple(c.name for c in columns)
        kept = tuple(None if f is as_text else f for f in converters)
        relation = Relation(relation_id, schema or "pg_catalog", table, identity, tuple(columns), names, kept,
                            tuple(zip(names, kept, strict=True)))
        self.relations[relation_id] = relation
        return relation

    def _type(self, data: bytes) -> TypeInfo:
        (type_oid,) = _U32.unpack_from(data, 1)
        schema, pos = self._string(data, 5)
        name, _ = self._string(data, pos)
        info = TypeInfo(type_oid, schema, name)
        self.types[type_oid] = info
        return info

    def _insert(self, data: bytes) -> Insert:
        (relation_id,) = _U32.unpack_from(data, 1)
        relation = self._relation(relation_id)
        if data[5] != 0x4E:  # 'N'
            raise PgOutputError(f"insert without a new tuple (got {chr(data[5])!r})")
        new, _, unchanged = self._tuple(data, 6, relation)
        return Insert(relation, _known(new) if unchanged else new)

    def _update(self, data: bytes) -> Update:
        (relation_id,) = _U32.unpack_from(data, 1)
        relation = self._relation(relation_id)
        pos = 5
        old: dict[str, Any] | None = None
        old_kind: str | None = None
        if data[pos] in (0x4B, 0x4F):  # 'K' key, 'O' old row
            old_kind = chr(data[pos])
            old, pos, _ = self._tuple(data, pos + 1, relation)
            old = _image(old, relation, old_kind)
        if data[pos] != 0x4E:
            raise PgOutputError(f"update without a new tuple (got {chr(data[pos])!r})")
        new, _, has_unchanged = self._tuple(data, pos + 1, relation)
        if not has_unchanged:
            return Update(relation, old, new, old_kind)
        unchanged: set[str] = set()
        for name, value in new.items():
            if value is _UNCHANGED:
                if old is not None and name in old and old_kind == "O":
                    new[name] = old[name]
                else:
                    unchanged.add(name)
        for name in unchanged:
            del new[name]
        return Update(relation, old, new, old_kind, frozenset(unchanged))

    def _delete(self, data: bytes) -> Delete:
        (relation_id,) = _U32.unpack_from(data, 1)
        relation = self._relation(relation_id)
        kind = data[5]
        if kind not in (0x4B, 0x4F):
            raise PgOutputError(f"delete without an old tuple (got {chr(kind)!r})")
        old, _, _ = self._tuple(data, 6, relation)
        return Delete(relation, _image(old, relation, chr(kind)), chr(kind))

    def _truncate(self, data: bytes) -> Truncate:
        (count,) = _U32.unpack_from(data, 1)
        options = data[5]
        ids = struct.unpack_from(f">{count}I", data, 6)
        return Truncate(tuple(self._relation(i) for i in ids), bool(options & 1), bool(options & 2))

    def _message(self, data: bytes) -> Message:
        flags, lsn = _MESSAGE.unpack_from(data, 1)
        prefix, pos = self._string(data, 10)
        (length,) = _U32.unpack_from(data, pos)
        pos += 4
        content = data[pos:pos + length]
        if len(content) != length:
            raise PgOutputError("message content runs past the end of the message")
        return Message(bool(flags & 1), lsn, prefix, bytes(content))


def walk_columns(data: bytes, pos: int, columns: tuple[tuple[str, Converter | None], ...],
                 encoding: str = "utf-8") -> tuple[dict[str, Any], int, bool]:
    """One pass over a tuple's (name, converter) pairs: (values by name, position after them, whether an unchanged
    TOAST marker is among them). Bounds are checked once, by the caller (a length running past the end leaves the
    next read out of range, or `pos` past the end). `cdc.capture._tuples.walk` does the same in C."""
    utf8 = encoding == "utf-8"
    unpack = _I32.unpack_from
    values: dict[str, Any] = {}
    unchanged = False
    for name, convert in columns:
        kind = data[pos]
        if kind == 0x74:  # 't' text
            start = pos + 5
            pos = start + unpack(data, pos + 1)[0]
            text = data[start:pos].decode() if utf8 else data[start:pos].decode(encoding)
            values[name] = text if convert is None else convert(text)
        elif kind == 0x6E:  # 'n' null
            values[name] = None
            pos += 1
        elif kind == 0x75:  # 'u' unchanged TOAST value, not sent
            values[name] = _UNCHANGED
            unchanged = True
            pos += 1
        elif kind == 0x62:  # 'b' binary (protocol v2+ with binary=true): kept as hex
            start = pos + 5
            pos = start + unpack(data, pos + 1)[0]
            values[name] = data[start:pos].hex()
        else:
            raise PgOutputError(f"unknown tuple value kind {chr(kind)!r}")
    return values, pos, unchanged


def _image(values: dict[str, Any], relation: Relation, kind: str) -> dict[str, Any]:
    """An old image: the whole row ('O'), or only the replica identity columns ('K'; the others arrive as nulls)."""
    if kind == "K":
        key = {c.name for c in relation.columns if c.in_identity}
        return {k: v for k, v in values.items() if k in key and v is not _UNCHANGED}
    return _known(values)


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """Drop unchanged-TOAST markers from an image that cannot be completed."""
    if any(v is _UNCHANGED for v in values.values()):
        return {k: v for k, v in values.items() if v is not _UNCHANGED}
    return values


_HANDLERS = {
    ord("B"): Decoder._begin,
    ord("C"): Decoder._commit,
    ord("O"): Decoder._origin,
    ord("R"): Decoder._relation_message,
    ord("Y"): Decoder._type,
    ord("I"): Decoder._insert,
    ord("U"): Decoder._update,
    ord("D"): Decoder._delete,
    ord("T"): Decoder._truncate,
    ord("M"): Decoder._message,
}
