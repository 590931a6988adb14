from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from cdc.errors import ConfigError
from cdc.mapping.filters import FilterValueError, conditions, describe, matches, to_sql
from cdc.mapping.model import Condition, Filter

FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)


def f(data: Any) -> Filter:
    return FILTER.validate_python(data)


def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def test_no_filter_lets_everything_through():
    assert matches(None, {"a": None})
    assert to_sql(None, {}) == ("TRUE", [])


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 1, False), ("ne", 1, True), ("lt", 1, False), ("le", 1, False), ("gt", 1, False), ("ge", 1, False),
    ("in", [1, 2], False), ("not_in", [1, 2], True), ("is_null", None, True), ("not_null", None, False),
])
def test_null_satisfies_only_ne_not_in_and_is_null(op: str, value: Any, expected: bool):
    assert matches(f(c("a", op, value)), {"a": None}) is expected
    assert matches(f({"not": c("a", op, value)}), {"a": None}) is not expected


def test_text_operators_on_null_are_false():
    assert not matches(f(c("t", "starts_with", "a")), {"t": None})
    assert not matches(f(c("t", "contains", "a")), {"t": None})


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 2, True), ("eq", 3, False), ("ne", 2, False), ("ne", 3, True), ("lt", 3, True), ("lt", 2, False),
    ("le", 2, True), ("gt", 1, True), ("gt", 2, False), ("ge", 2, True), ("in", [1, 2], True),
    ("in", [3], False), ("not_in", [1, 2], False), ("not_in", [3], True), ("not_null", None, True),
])
def test_comparisons_on_a_value(op: str, value: Any, expected: bool):
    assert matches(f(c("a", op, value)), {"a": 2}) is expected


def test_all_any_and_not_combine():
    row = {"state": 0, "type": 3, "name": None}
    assert matches(f({"all": [c("state", "eq", 0), c("type", "eq", 3)]}), row)
    assert not matches(f({"all": [c("state", "eq", 0), c("type", "eq", 1)]}), row)
    assert matches(f({"any": [c("state", "eq", 1), c("type", "eq", 3)]}), row)
    assert not matches(f({"any": [c("state", "eq", 1), c("name", "eq", "x")]}), row)
    assert matches(f({"not": {"any": [c("state", "eq", 1), c("name", "eq", "x")]}}), row)


@pytest.mark.parametrize(("row_value", "filter_value"), [
    (Decimal("10.50"), "10.5"),
    (Decimal("10.50"), 10.5),
    (True, "true"),
    (False, "no"),
    (True, 1),
    (3, "3"),
    (3, Decimal("3.0")),
    (date(2024, 5, 1), "2024-05-01"),
    (datetime(2024, 5, 1, 12, tzinfo=UTC), "2024-05-01T12:00:00"),
    (datetime(2024, 5, 1, 12, tzinfo=UTC), "2024-05-01T14:00:00+02:00"),
    (datetime(2024, 5, 1, 12), "2024-05-01 12:00"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    ("3", 3),
    ("2024-05-01", date(2024, 5, 1)),
])
def test_filter_values_take_the_type_of_the_row_value(row_value: Any, filter_value: Any):
    assert matches(f(c("a", "eq", filter_value)), {"a": row_value})
    assert matches(f(c("a", "in", [filter_value])), {"a": row_value})
    assert not matches(f(c("a", "ne", filter_value)), {"a": row_value})


def test_a_filter_value_that_does_not_convert_is_an_error():
    with pytest.raises(FilterValueError, match="filter on a: 'abc' is not a valid int value"):
        matches(f(c("a", "eq", "abc")), {"a": 1})
    with pytest.raises(FilterValueError, match="not a valid int value"):
        matches(f(c("a", "eq", 1.5)), {"a": 1})
    with pytest.raises(FilterValueError, match="not a valid bool value"):
        matches(f(c("a", "eq", "maybe")), {"a": True})


def test_text_compares_by_code_point():
    assert matches(f(c("t", "lt", "a")), {"t": "B"})
    assert matches(f(c("t", "gt", "z")), {"t": "é"})
    assert matches(f(c("t", "starts_with", "ab")), {"t": "abc"})
    assert matches(f(c("t", "starts_with", "")), {"t": "abc"})
    assert matches(f(c("t", "contains", "%_")), {"t": "a%_b"})
    assert not matches(f(c("t", "contains", "%")), {"t": "ab"})


def test_text_operators_need_text():
    with pytest.raises(FilterValueError, match="'starts_with' applies to text"):
        matches(f(c("a", "starts_with", "1")), {"a": 12})


def test_a_row_without_the_filtered_column_is_a_caller_error():
    with pytest.raises(KeyError):
        matches(f(c("a", "eq", 1)), {"b": 1})


# ---------------------------------------------------------------- SQL

COLUMNS = {"name": "varchar", "state": "int4", "price": "numeric", "active": "bool", "day": "date",
           "at": "timestamptz", "id": "uuid", "select": "text"}


def test_conditions_compile_to_two_valued_sql_with_typed_parameters():
    assert to_sql(f(c("state", "eq", "0")), COLUMNS) == ('("state" IS NOT NULL AND "state" = $1::int4)', [0])
    assert to_sql(f(c("state", "ne", 0)), COLUMNS) == ('"state" IS DISTINCT FROM $1::int4', [0])
    assert to_sql(f(c("price", "ge", "1.5")), COLUMNS) == (
        '("price" IS NOT NULL AND "price" >= $1::numeric)', [Decimal("1.5")])
    assert to_sql(f(c("active", "eq", "false")), COLUMNS) == (
        '("active" IS NOT NULL AND "active" = $1::bool)', [False])
    assert to_sql(f(c("day", "lt", "2024-01-31")), COLUMNS) == (
        '("day" IS NOT NULL AND "day" < $1::date)', [date(2024, 1, 31)])
    assert to_sql(f(c("name", "is_null")), COLUMNS) == ('"name" IS NULL', [])
    assert to_sql(f(c("name", "not_null")), COLUMNS) == ('"name" IS NOT NULL', [])


def test_text_compares_in_the_c_collation():
    assert to_sql(f(c("name", "lt", "m")), COLUMNS) == (
        '("name" IS NOT NULL AND "name" COLLATE "C" < $1::text)', ["m"])
    assert to_sql(f(c("name", "starts_with", "a%")), COLUMNS) == (
        '("name" IS NOT NULL AND starts_with("name" COLLATE "C", $1::text))', ["a%"])
    assert to_sql(f(c("name", "contains", "_")), COLUMNS) == (
        '("name" IS NOT NULL AND strpos("name" COLLATE "C", $1::text) > 0)', ["_"])


def test_lists_go_as_one_array_parameter():
    assert to_sql(f(c("state", "in", [1, "2"])), COLUMNS) == (
        '("state" IS NOT NULL AND "state" = ANY($1::int4[]))', [[1, 2]])
    assert to_sql(f(c("name", "not_in", ["a", 3])), COLUMNS) == (
        '("name" IS NULL OR "name" COLLATE "C" <> ALL($1::text[]))', [["a", "3"]])


def test_parameters_are_numbered_from_first_param_in_reading_order():
    sql, params = to_sql(f({"all": [c("state", "eq", 0), {"not": {"any": [
        c("name", "eq", "x"), c("price", "gt", 1)]}}, c("name", "is_null")]}), COLUMNS, first_param=4)
    assert sql == ('(("state" IS NOT NULL AND "state" = $4::int4) AND (NOT (("name" IS NOT NULL AND '
                   '"name" COLLATE "C" = $5::text) OR ("price" IS NOT NULL AND "price" > $6::numeric))) '
                   'AND "name" IS NULL)')
    assert params == [0, "x", Decimal(1)]


def test_values_never_enter_the_sql_text_and_columns_are_quoted():
    nasty = "x'); DROP TABLE account; --"
    sql, params = to_sql(f(c("select", "eq", nasty)), COLUMNS)
    assert nasty not in sql and "DROP" not in sql
    assert params == [nasty]
    assert sql == '("select" IS NOT NULL AND "select" COLLATE "C" = $1::text)'


def test_timestamps_without_a_zone_are_utc_for_timestamptz_columns():
    _, params = to_sql(f(c("at", "ge", "2024-01-01T10:00:00")), COLUMNS)
    assert params == [datetime(2024, 1, 1, 10, tzinfo=UTC)]
    _, params = to_sql(f(c("at", "ge", datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))),
                       COLUMNS)
    assert params[0] == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_sql_refuses_what_it_cannot_express():
    with pytest.raises(ConfigError, match="filter on nope: no such column"):
        to_sql(f(c("nope", "eq", 1)), COLUMNS)
    with pytest.raises(ConfigError, match="'starts_with' applies to text columns, not int4"):
        to_sql(f(c("state", "starts_with", "1")), COLUMNS)
    with pytest.raises(ConfigError, match="filter on state: 'zero' is not a valid int value"):
        to_sql(f(c("state", "eq", "zero")), COLUMNS)
    with pytest.raises(ConfigError, match="cannot be filtered"):
        to_sql(f(c("doc", "eq", "{}")), {"doc": "jsonb"})


def test_type_names_are_accepted_in_either_spelling():
    assert to_sql(f(c("n", "eq", 1)), {"n": "integer"})[0] == '("n" IS NOT NULL AND "n" = $1::int4)'
    assert to_sql(f(c("n", "eq", "t")), {"n": "boolean"}) == ('("n" IS NOT NULL AND "n" = $1::bool)', [True])


def test_conditions_and_description():
    flt = f({"all": [c("state", "eq", 0), {"not": c("name", "in", ["a", "b"])}, c("active", "eq", False),
                     {"any": [c("day", "is_null"), c("price", "gt", 1.5)]}]})
    assert [x.field for x in conditions(flt)] == ["state", "name", "active", "day", "price"]
    assert all(isinstance(x, Condition) for x in conditions(flt))
    assert describe(flt) == ("state eq 0 and not (name in ['a', 'b']) and active eq false "
                             "and (day is_null or price gt 1.5)")
    assert describe(None) == ""
