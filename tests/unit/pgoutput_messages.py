"""Hand-built pgoutput protocol v1 messages for the decoder and assembler tests."""

from __future__ import annotations

import struct

from cdc.capture.pgoutput import PG_EPOCH_US

UNCHANGED = object()  # an unchanged TOAST value ('u')


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(final_lsn: int, ts_us: int, xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, ts_us - PG_EPOCH_US, xid)


def commit(commit_lsn: int, end_lsn: int, ts_us: int) -> bytes:
    return b"C" + struct.pack(">bQQq", 0, commit_lsn, end_lsn, ts_us - PG_EPOCH_US)


def origin(lsn: int, name: str) -> bytes:
    return b"O" + struct.pack(">Q", lsn) + cstr(name)


def relation(rel_id: int, schema: str, table: str, columns: list[tuple[str, int, bool]],
             identity: str = "f") -> bytes:
    out = b"R" + struct.pack(">I", rel_id) + cstr(schema) + cstr(table) + identity.encode()
    out += struct.pack(">h", len(columns))
    for name, oid, key in columns:
        out += bytes([1 if key else 0]) + cstr(name) + struct.pack(">Ii", oid, -1)
    return out


def tuple_data(values: list[str | None | object]) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v is UNCHANGED:
            out += b"u"
        else:
            raw = str(v).encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
    return out



def insert(rel_id: int, values: list) -> bytes:
    return b"I" + struct.pack(">I", rel_id) + b"N" + tuple_data(values)


def update(rel_id: int, new: list, old: list | None = None, kind: bytes = b"O") -> bytes:
    out = b"U" + struct.pack(">I", rel_id)
    if old is not None:
        out += kind + tuple_data(old)
    return out + b"N" + tuple_data(new)


def delete(rel_id: int, old: list, kind: bytes = b"O") -> bytes:
    return b"D" + struct.pack(">I", rel_id) + kind + tuple_data(old)


def truncate(rel_ids: list[int], options: int = 0) -> bytes:
    return b"T" + struct.pack(">Ib", len(rel_ids), options) + b"".join(struct.pack(">I", r) for r in rel_ids)


def message(prefix: str, content: bytes, lsn: int, transactional: bool = False) -> bytes:
    return (b"M" + struct.pack(">bQ", 1 if transactional else 0, lsn) + cstr(prefix)
            + struct.pack(">I", len(content)) + content)


def type_message(oid: int, schema: str, name: str) -> bytes:
    return b"Y" + struct.pack(">I", oid) + cstr(schema) + cstr(name)
