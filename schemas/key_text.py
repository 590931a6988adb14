"""A record's key as one text: how couplings, intents, jobs, errors, locks and commands name a record.

A key is the ordered tuple of its key columns' values, each as its canonical text (`cdc.values.canonical`:
decimals without trailing zeros, dates and times in ISO 8601, UUIDs in lower case). A single-column key is that
one text as it is (`C00001`), as it always was, so state written before composite keys stays valid. A key of
several columns is the compact JSON array of their texts in the table's primary-key order
(`["1000","EUR","10"]`): unambiguous whatever the texts hold (commas, quotes, brackets), and read back exactly.
A key column never holds NULL (it is part of a primary key): a null value is refused. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


class KeyTextError(ValueError):
    """A text that is not a key of the expected number of columns."""


def encode(parts: Sequence[str | None]) -> str:
    """The key text of these column texts (primary-key order)."""
    if not parts:
        raise KeyTextError("a key has at least one column")
    if any(part is None for part in parts):
        raise KeyTextError(f"a key column holds no value (null) in {list(parts)!r}")
    if any(not isinstance(part, str) for part in parts):
        raise KeyTextError(f"key parts are texts, not {[type(p).__name__ for p in parts]}")
    if len(parts) == 1:
        return parts[0]  # type: ignore[return-value]
    return json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))


def decode(text: str, columns: int) -> tuple[str, ...]:
    """The column texts of a key of `columns` columns."""
    if columns == 1:
        return (text,)
    try:
        parts = json.loads(text)
    except ValueError:
        parts = None
    if not isinstance(parts, list) or len(parts) != columns or not all(isinstance(p, str) for p in parts):
        raise KeyTextError(f"{text!r} is not a key of {columns} columns (a JSON array of {columns} texts, "
                           f"e.g. {encode(['a'] * columns)})")
    return tuple(parts)
