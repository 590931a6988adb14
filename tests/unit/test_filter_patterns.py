"""LIKE patterns in filters, read once (cdc.mapping.patterns) for the Python evaluation and the generated SQL.
What PostgreSQL itself answers is property-tested in tests/integration/test_filter_patterns.py."""

from __future__ import annotations

import pytest

from cdc.mapping.filters import describe, matches, to_sql
from cdc.mapping.model import Condition
from cdc.mapping.patterns import PatternError, check, parse


@pytest.mark.parametrize(("pattern", "escape", "text", "expected"), [
    ("V%", "\\", "V000123", True),
    ("V%", "\\", "TMP-1", False),
    ("V%", "\\", "v000123", False),  # like is case-sensitive
    ("V_", "\\", "V1", True),
    ("V_", "\\", "V12", False),  # _ is exactly one character, the pattern the whole value
    ("%", "\\", "", True),
    ("_", "\\", "", False),
    ("100\\%", "\\", "100%", True),
    ("100\\%", "\\", "1000", False),
    ("ZZ!_%", "!", "ZZ_old", True),
    ("ZZ!_%", "!", "ZZX", False),
    ("a\\b", "", "a\\b", True),  # no escape: the backslash is a character
    ("a__", "_", "a_", True),  # an escape may be a wildcard character: '__' is one literal '_'
    ("a_b", "\\", "a\nb", True),  # any character, newlines too
    ("%.%", "\\", "a.b", True),  # regex characters are plain characters
    ("🙂_", "\\", "🙂x", True),  # a character is a code point
])
def test_like_reads_patterns_as_postgresql_does(pattern: str, escape: str, text: str, expected: bool) -> None:
    assert parse(pattern, escape).matches(text) is expected


def test_ilike_folds_ascii_letters_only_as_the_c_collation_does() -> None:
    assert parse("acme%", "\\", folded=True).matches("ACME Corp")
    assert not parse("é", "\\", folded=True).matches("É")
    assert not parse("strasse", "\\", folded=True).matches("STRAßE")


@pytest.mark.parametrize(("pattern", "escape", "sql"), [
    ("V%", "\\", "V%"),
    ("ZZ!_%", "!", "ZZ\\_%"),
    ("a\\b", "", "a\\\\b"),
    ("50!%!!", "!", "50\\%!"),
    ("%%x", "\\", "%x"),
])
def test_the_sql_pattern_is_the_same_pattern_escaped_with_a_backslash(pattern: str, escape: str, sql: str) -> None:
    assert parse(pattern, escape).sql() == sql


@pytest.mark.parametrize(("pattern", "escape"), [("50\\", "\\"), ("a!", "!"), ("x", "ab")])
def test_patterns_postgresql_would_refuse_are_refused(pattern: str, escape: str) -> None:
    with pytest.raises(PatternError):
        check(pattern, escape)


def test_a_null_is_outside_like_and_inside_not_like() -> None:
    for op, expected in (("like", False), ("ilike", False), ("not_like", True), ("not_ilike", True)):
        assert matches(Condition(field="name", op=op, value="%"), {"name": None}) is expected


def test_the_generated_sql_takes_the_pattern_as_a_parameter_under_the_c_collation() -> None:
    where, params = to_sql(Condition(field="name", op="not_ilike", value="zz!_%", escape="!"), {"name": "varchar"})
    assert where == '("name" IS NULL OR NOT ("name" COLLATE "C" ILIKE $1::text))'
    assert params == ["zz\\_%"]


def test_a_pattern_reads_back_as_written() -> None:
    assert describe(Condition(field="name", op="not_like", value="ZZ!_%", escape="!")) == \
        "name not_like 'ZZ!_%' escape '!'"
    assert describe(Condition(field="no", op="like", value="V%")) == "no like 'V%'"
