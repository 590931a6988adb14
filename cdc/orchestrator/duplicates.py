"""Near matches: records that are probably the same although match-based coupling would not pair them.

Pure. Two values are near when they are equal after normalising (case, whitespace and punctuation ignored), or,
for e-mail addresses, equal ignoring case or one edit apart (a character replaced, added, removed, or two
neighbours swapped). Used by the dry run to list likely duplicates: records a full sync would create on the other
side although a near match exists there.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdc.values import canonical


def normalise(value: Any) -> str:
    """Lower case, without whitespace, punctuation or symbols: 'ACME  Corp. ' and 'acme corp' are the same."""
    text = unicodedata.normalize("NFKC", str(canonical(value)) if value is not None else "").casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def is_email(value: Any) -> bool:
    return isinstance(value, str) and "@" in value


def within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance of at most 1 (substitution, insertion, deletion, adjacent swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]
                and a[diffs[1]] == b[diffs[0]])
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _sameness(value: Any, other: Any) -> str:
    if str(value) == str(other):
        return "same"
    if is_email(value) and str(value).strip().casefold() == str(other).strip().casefold():
        return "same e-mail ignoring case"
    return "same ignoring case, spaces and punctuation"


def _deletions(text: str) -> set[str]:
    return {text} | {text[:i] + text[i + 1:] for i in range(len(text))}


@dataclass(frozen=True)
class NearMatch:
    key: str
    column: str
    value: Any
    reason: str


@dataclass(frozen=True)
class LikelyDuplicate:
    """`source_key` would be created on the other side although `match.key` there is near it."""

    mapping: str
    source: str
    source_key: str
    source_column: str
    source_value: Any
    destination_key: str
    destination_column: str
    destination_value: Any
    reason: str


class NearIndex:
    """The records of one side, indexed for near lookups on some columns.

    `fields` pairs a column of the records being checked with a column of the indexed records (a mapping's
    match fields).
    """

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self._exact: dict[str, dict[str, set[str]]] = {col: defaultdict(set) for _, col in fields}
        self._mail: dict[str, dict[str, set[str]]] = {col: defaultdict(set) for _, col in fields}
        self._values: dict[tuple[str, str], Any] = {}

    def add(self, key: str, row: Mapping[str, Any]) -> None:
        for _, column in self.fields:
            value = row.get(column)
            if value is None or str(value).strip() == "":
                continue
            self._values[(key, column)] = value
            normal = normalise(value)
            if normal:
                self._exact[column][normal].add(key)
            if is_email(value):
                for variant in _deletions(str(value).strip().casefold()):
                    self._mail[column][variant].add(key)

    def near(self, row: Mapping[str, Any], exclude: set[str] | frozenset[str] = frozenset()) -> list[NearMatch]:
        """The indexed records near `row` on any field, at most one reason per record (the first found)."""
        found: dict[str, NearMatch] = {}
        for source_column, column in self.fields:
            value = row.get(source_column)
            if value is None or str(value).strip() == "":
                continue
            normal = normalise(value)
            for key in sorted(self._exact[column].get(normal, ())) if normal else ():
                if key not in exclude and key not in found:
                    other = self._values[(key, column)]
                    found[key] = NearMatch(key, column, other, f"{column}: {_sameness(value, other)}")
            if is_email(value):
                mail = str(value).strip().casefold()
                candidates: set[str] = set()
                for variant in _deletions(mail):
                    candidates |= self._mail[column].get(variant, set())
                for key in sorted(candidates):
                    if key in exclude or key in found:
                        continue
                    other = str(self._values[(key, column)]).strip().casefold()
                    if other == mail:
                        found[key] = NearMatch(key, column, self._values[(key, column)],
                                               f"{column}: same e-mail ignoring case")
                    elif within_one_edit(mail, other):
                        found[key] = NearMatch(key, column, self._values[(key, column)],
                                               f"{column}: e-mail one character apart")
        return list(found.values())
