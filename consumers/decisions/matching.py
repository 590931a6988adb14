"""The match rule: when a record and a record of the other system are the same thing, by the mapping's match fields.

At one match priority, each of its fields must hold a value — a field that is None, or empty in its canonical form,
makes the record match nothing at that priority — and the values agree as text: exactly where the field is
case-sensitive, ignoring case otherwise. The worker sends a record's `match_texts` to PostgreSQL, which compares them
with the destination columns' text (`lower()` on both sides where case is ignored; `consumers.situation`);
`cdc verify` groups the records of both sides by `match_key`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdc.mapping.model import MatchField
from cdc.pair import System
from cdc.values import canonical

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
