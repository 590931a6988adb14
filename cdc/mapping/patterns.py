"""SQL LIKE patterns, read once and given one meaning in Python and in PostgreSQL.

A pattern is read into pieces — literal characters, `_` (any one character) and `%` (any run of characters,
also none) — with the filter's escape character making the next character literal, as PostgreSQL reads it
(`LIKE … ESCAPE …`; an empty escape means none). The pieces become a Python regular expression and, for the
generated SQL, the same pattern spelled with PostgreSQL's default escape (a backslash), so both evaluate what
was read once.

`ilike` compares under the C collation in both: only the ASCII letters A–Z fold to a–z (PostgreSQL lowers
text with the C collation this way), so `É` and `é` differ, `K` and `k` do not.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass


class Wildcard(enum.Enum):
    ANY_ONE = "_"
    ANY_RUN = "%"


ANY_ONE, ANY_RUN = Wildcard.ANY_ONE, Wildcard.ANY_RUN
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class PatternError(ValueError):
    """A pattern PostgreSQL would refuse (it ends with its escape character) or an escape that is not one
    character."""


@dataclass(frozen=True)
class Pattern:
    pieces: tuple[str | Wildcard, ...]
    """Literal characters, ANY_ONE or ANY_RUN."""
    folded: bool
    """ILIKE: ASCII letters compare without case."""

    def matches(self, text: str) -> bool:
        return self.regex.fullmatch(fold(text) if self.folded else text) is not None

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        parts = []
        for piece in self.pieces:
            if isinstance(piece, Wildcard):
                parts.append(".*" if piece is ANY_RUN else ".")
            else:
                parts.append(re.escape(fold(piece) if self.folded else piece))
        return re.compile("".join(parts), re.DOTALL)

    def sql(self) -> str:
        """The pattern with a backslash as its escape (PostgreSQL's default: no ESCAPE clause needed)."""
        out = []
        for piece in self.pieces:
            if isinstance(piece, Wildcard):
                out.append(piece.value)
            else:
                out.append("\\" + piece if piece in ("%", "_", "\\") else piece)
        return "".join(out)


def fold(text: str) -> str:
    """ASCII letters lowered, every other character kept (PostgreSQL's lower() under the C collation)."""
    return text.translate(_ASCII_LOWER)


def check(pattern: str, escape: str) -> None:
    """PatternError when PostgreSQL would refuse the pattern or the escape."""
    if len(escape) > 1:
        raise PatternError(f"escape {escape!r} must be one character, or empty for none")
    if escape:
        literal = False
        for char in pattern:
            literal = not literal and char == escape
        if literal:
            raise PatternError(f"pattern {pattern!r} ends with its escape character {escape!r}")


@functools.lru_cache(maxsize=1024)
def parse(pattern: str, escape: str = "\\", folded: bool = False) -> Pattern:
    check(pattern, escape)
    pieces: list[str | Wildcard] = []
    chars = iter(pattern)
    for char in chars:
        if escape and char == escape:
            pieces.append(next(chars))
        elif char == "%":
            if not pieces or pieces[-1] is not ANY_RUN:  # %% is one run
                pieces.append(ANY_RUN)
        elif char == "_":
            pieces.append(ANY_ONE)
        else:
            pieces.append(char)
    return Pattern(tuple(pieces), folded)
