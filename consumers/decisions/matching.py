"""The match rule: when a record and a record of the other system are the same thing, by the mapping's match fields.

At one match priority, each of its fields must hold a value — a field that is None, or empty in its canonical form,
makes the record match nothing at that priority — and the values agree in their canonical text (`cdc.values`):
exactly where the field is case-sensitive, ignoring case otherwise (Python's `str.lower`). `match_key` is that
rule; `cdc verify` groups the records of both sides by it, and the worker confirms every candidate PostgreSQL
finds with it (`consumers.situation`), so the two never disagree on what matches.

The worker looks candidates up by `match_values`: a destination column of text takes the field's text (compared with
`lower()` where case is ignored); any other column takes the text as a value of the column's type, compared as
values — `1.5` finds `1.50` in a `numeric(10,2)` column, whose text would not — when that value's canonical text is
the field's text (so `'01'` finds nothing in an integer column, as `match_key` says).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdc.mapping.model import MatchField
from cdc.pair import System
from cdc.values import CoercionError, canonical, coerce, kind_of

MATCH_SEPARATOR = "\x1f"
"""Between the fields' texts in a match key (the ASCII unit separator)."""


def match_texts(fields: Sequence[MatchField], system: System, row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Each field's value in `system`'s row as the text it is matched by; None if a field is empty."""
    texts = []
    for f in fields:
        value = row.get(f.column(system))
        if value is None:
            return None
        text = canonical(value)
        if text == "":
            return None
        texts.append(str(text))
    return tuple(texts)


def match_key(fields: Sequence[MatchField], system: System, row: Mapping[str, Any]) -> str | None:
    """The text two records share when they match on these fields (case folded where a field ignores case);
    None if a field is empty."""
    texts = match_texts(fields, system, row)
    if texts is None:
        return None
    return MATCH_SEPARATOR.join(text if f.case_sensitive else text.lower()
                                for f, text in zip(fields, texts, strict=True))


def looked_up_as_text(type_name: str) -> bool:
    """Whether a destination column is matched by its text (text types, and types the sync does not type) rather
    than by value."""
    return kind_of(type_name) in ("text", None)


def match_values(fields: Sequence[MatchField], system: System, row: Mapping[str, Any],
                 types: Sequence[str]) -> tuple[Any, ...] | None:
    """The values `system`'s row is looked up by in the other system's columns of `types` (one per field): the
    field's text for a column matched by text, else the text as a value of the column's type. None when the row
    matches nothing at these fields (a field empty, or its text no value of that type with the same canonical
    text)."""
    texts = match_texts(fields, system, row)
    if texts is None:
        return None
    values: list[Any] = []
    for f, text, type_name in zip(fields, texts, types, strict=True):
        if looked_up_as_text(type_name):
            values.append(text)
            continue
        try:
            value = coerce(text, type_name)
        except CoercionError:
            return None
        same = str(canonical(value))
        if (same if f.case_sensitive else same.lower()) != (text if f.case_sensitive else text.lower()):
            return None
        values.append(value)
    return tuple(values)
