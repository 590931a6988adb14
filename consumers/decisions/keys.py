"""Keys of records the sync creates, derived from the source record, best first.

A creation takes the first candidate that no record holds (coupled, announced, or merely existing: a creation only
ever creates), and announces it before writing it (`cdc.state.intents`), so a replay after a crash makes that same
record and no other. Every strategy ends in a few derived alternatives for when the preferred key is taken — except
`series`, whose keys are not derived but allocated from the destination's number series (`consumers.series`), and
`columns`, whose key is what the creation writes into the key columns (`columns_key`; a composite key's strategy).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from cdc.mapping.model import Side, TableMapping
from cdc.values import CoercionError, coerce, key_text
from consumers.decisions.plan import TableShape

NAMESPACE = uuid.UUID("6f0c6d1e-8a4e-4c55-9d0e-2f7f4c1b7a10")


ALTERNATIVES = 3
"""Derived keys tried after the first one of a strategy, when records hold it already."""


def _seed(mapping: TableMapping, source_key: str, attempt: int) -> str:
    return f"{mapping.name}:{source_key}" + (f"#{attempt}" if attempt else "")


def uuid_key(mapping: TableMapping, source_key: str, attempt: int = 0) -> str:
    return str(uuid.uuid5(NAMESPACE, _seed(mapping, source_key, attempt)))


def code_key(mapping: TableMapping, side: Side, source_key: str, max_length: int | None, attempt: int = 0) -> str:
    length = min(side.new_key.length, max_length or side.new_key.length)
    digest = hashlib.sha256(_seed(mapping, source_key, attempt).encode()).digest()
    body = base64.b32encode(digest).decode().rstrip("=")
    return (side.new_key.prefix + body)[:length]


def candidate_keys(mapping: TableMapping, side: Side, key_type: str, max_length: int | None, source_key: str,
                   source_row: dict[str, Any], *, alternatives: bool = True) -> list[str]:
    """The keys a record created on `side` may take, best first; the first one no record holds is used. Without
    `alternatives`, only the strategy's own keys (the derived alternatives are worked out when those are taken).
    None for `series` (its key is allocated, not derived) and `columns` (`columns_key`)."""
    if side.new_key.strategy in ("series", "columns"):
        return []
    attempts = range(ALTERNATIVES + 1 if alternatives else 1)
    if key_type == "uuid":
        return [uuid_key(mapping, source_key, n) for n in attempts]
    keys: list[str] = []
    if side.new_key.strategy == "field" and side.new_key.field:
        value = source_row.get(side.new_key.field)
        if value not in (None, "") and (max_length is None or len(str(value)) <= max_length):
            keys.append(str(value))
    if side.new_key.strategy == "uuid" and (max_length is None or max_length >= 36):
        keys.append(uuid_key(mapping, source_key))
    keys += [code_key(mapping, side, source_key, max_length, n) for n in attempts]
    return keys


def columns_key(side: Side, values: Mapping[str, Any], shape: TableShape) -> str | None:
    """Strategy `columns`: the key text of what a creation writes (`values`: carried fields, then the side's
    defaults) into the key columns, each typed as its column; None when one of them gets no value."""
    typed: dict[str, Any] = {}
    for column in side.key_columns:
        value = values.get(column, side.defaults.get(column))
        try:
            typed[column] = coerce(value, shape.columns[column].type_name)
        except (CoercionError, KeyError):
            return None
        if typed[column] is None or typed[column] == "":
            return None
    return key_text(typed, side.key_columns)
