"""Keys of records the sync creates, derived from the source record so a replayed create lands on the same row."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from cdc.mapping.model import Side, TableMapping

NAMESPACE = uuid.UUID("6f0c6d1e-8a4e-4c55-9d0e-2f7f4c1b7a10")


def uuid_key(mapping: TableMapping, source_key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{mapping.name}:{source_key}"))


def code_key(mapping: TableMapping, side: Side, source_key: str, max_length: int | None) -> str:
    length = min(side.new_key.length, max_length or side.new_key.length)
    digest = hashlib.sha256(f"{mapping.name}:{source_key}".encode()).digest()
    body = base64.b32encode(digest).decode().rstrip("=")
    return (side.new_key.prefix + body)[:length]


def candidate_keys(mapping: TableMapping, side: Side, key_type: str, max_length: int | None, source_key: str,
                   source_row: dict[str, Any]) -> list[str]:
    """The keys a record created on `side` may take, best first. The first one not coupled elsewhere is used."""
    if key_type == "uuid":
        return [uuid_key(mapping, source_key)]
    keys: list[str] = []
    if side.new_key.strategy == "field" and side.new_key.field:
        value = source_row.get(side.new_key.field)
        if value not in (None, "") and (max_length is None or len(str(value)) <= max_length):
            keys.append(str(value))
    if side.new_key.strategy == "uuid" and (max_length is None or max_length >= 36):
        keys.append(uuid_key(mapping, source_key))
    keys.append(code_key(mapping, side, source_key, max_length))
    return keys
