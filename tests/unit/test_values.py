"""Typing event values for a column: hostile input becomes a CoercionError naming the value, never a crash."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.values import CoercionError, canonical, coerce, convert


@pytest.mark.parametrize("value, type_name", [
    ("12abc", "numeric"), (True, "int4"), (2**40, "int4"), ("1.5", "int8"), ("maybe", "bool"),
    ("not-a-uuid", "uuid"), ("2024-13-45T00:00:00", "timestamptz"), ("10000-02-30", "date"),
    ("NaN", "int4"), ("Infinity", "int8"), (float("nan"), "int4"),
    ("\ud800 lone surrogate", "text"), ("nul \x00 inside", "varchar"),
])
def test_hostile_values_are_errors_naming_the_value(value: object, type_name: str) -> None:
    with pytest.raises(CoercionError):
        coerce(value, type_name)


@pytest.mark.parametrize("value, type_name, expected", [
    ("NaN", "numeric", "NaN"), ("Infinity", "numeric", "Infinity"), ("-Infinity", "numeric", "-Infinity"),
    (float("nan"), "float8", "NaN"), (float("inf"), "float8", "Infinity"), ("-Infinity", "float4", "-Infinity"),
    ("10000-01-01", "date", "10000-01-01"), ("infinity", "date", "infinity"), ("0044-03-15 BC", "date",
                                                                                  "0044-03-15 BC"),
    ("-infinity", "timestamptz", "-infinity"), ("12000-01-01T10:00:00+02:00", "timestamptz",
                                                 "12000-01-01T08:00:00+00:00"),
])
def test_values_postgresql_holds_are_carried_even_where_python_has_no_plain_form(
        value: object, type_name: str, expected: str) -> None:
    """NaN, infinities, years past 9999 and BC: valid PostgreSQL values, never poison (issue: dead-lettered)."""
    # numeric(p, s) holds NaN but not the infinities, which only an unconstrained numeric (no scale) holds
    scale = None if type_name == "numeric" and expected.endswith("Infinity") else 2
    assert canonical(coerce(value, type_name, scale=scale)) == expected


def test_text_longer_than_the_column_is_truncated_as_the_reference_does() -> None:
    assert coerce("x" * 500, "varchar", 30) == "x" * 30


@pytest.mark.parametrize("value, type_name, expected", [
    ("12.50", "numeric", Decimal("12.50")), (19723, "date", dt.date(2024, 1, 1)),
    (1704067200000000, "timestamptz", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    (1704067200000, "timestamptz", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    ("2024-01-01T00:00:00Z", "timestamptz", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    ("t", "bool", True), ("42", "int4", 42),
])
def test_our_and_debeziums_encodings_are_understood(value: object, type_name: str, expected: object) -> None:
    assert coerce(value, type_name) == expected


@given(st.decimals(min_value=-10**12, max_value=10**12, allow_nan=False, allow_infinity=False, places=4))
def test_canonical_numbers_ignore_scale(number: Decimal) -> None:
    assert canonical(coerce(str(number), "numeric")) == canonical(number.quantize(Decimal("0.000001")))


@given(st.uuids())
def test_uuids_round_trip_through_their_canonical_form(value: uuid.UUID) -> None:
    assert coerce(canonical(value), "uuid") == value


@given(st.text())
def test_any_valid_text_without_nul_is_kept(text: str) -> None:
    if "\x00" in text or any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return
    assert coerce(text, "text") == text


def test_numbers_are_rounded_to_the_destination_scale_as_postgresql_stores_them() -> None:
    assert coerce("574.185", "numeric", scale=2) == Decimal("574.19")
    assert coerce("-0.125", "numeric", scale=2) == Decimal("-0.13")
    assert canonical(coerce("574.185", "numeric", scale=2)) == canonical(Decimal("574.1900"))


def test_a_value_the_destination_column_cannot_hold_fails_the_record_naming_value_and_column() -> None:
    from consumers.decisions.fields import target_values
    from tests.unit.test_decisions import CRM, Col, Shape, erp_row, mapping

    integers = Shape({**CRM.columns, "credit": Col("int4")})
    with pytest.raises(CoercionError) as failed:
        target_values(mapping(), "erp", erp_row(credit=Decimal("NaN")), integers, {})
    message = str(failed.value)
    assert "'credit'" in message and "NaN" in message and "int4" in message
    scaled = Shape({**CRM.columns, "credit": Col("numeric", scale=2)})  # numeric(p, 2): no room for infinity
    with pytest.raises(CoercionError) as failed:
        target_values(mapping(), "erp", erp_row(credit=Decimal("-Infinity")), scaled, {})
    message = str(failed.value)
    assert "'credit'" in message and "Infinity" in message and "precision" in message
    assert target_values(mapping(), "erp", erp_row(credit=Decimal("NaN")), scaled, {})[0]["credit"] == "NaN"


# One rule for the sync and for the file (cdc/values/__init__.py): `convert` is `coerce` by family.
@pytest.mark.parametrize("value, type_name, expected", [
    (True, "text", "true"), (False, "varchar", "false"),  # PostgreSQL's cast from boolean
    (float("nan"), "text", "NaN"), (float("-inf"), "text", "-Infinity"), (Decimal("1E+2"), "text", "100"),
    ({"a": [1, None]}, "text", '{"a": [1, null]}'),
    ("1.0", "int4", 1), ("1e3", "int8", 1000), (Decimal("12.00"), "int2", 12),
    (dt.datetime(2024, 5, 6), "date", dt.date(2024, 5, 6)), ("2024-05-06T00:00:00", "date", dt.date(2024, 5, 6)),
    (dt.datetime(2024, 5, 6, 22, tzinfo=dt.timezone(dt.timedelta(hours=-2))), "date", dt.date(2024, 5, 7)),
    (1, "bool", True), ("ON", "boolean", True),
    (1_700_000_000_123_456, "timestamptz", dt.datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=dt.UTC)),
    ("x", "jsonb", '"x"'), ('{"a": 1}', "json", '{"a": 1}'), ([1, 2], "jsonb", "[1, 2]"),
])
def test_lossless_conversions_follow_postgresql(value: object, type_name: str, expected: object) -> None:
    assert coerce(value, type_name) == expected
    assert canonical(coerce(value, type_name)) == canonical(expected)


@pytest.mark.parametrize("value, type_name", [
    (dt.datetime(2024, 5, 6, 10, 30), "date"), ("2024-05-06 10:30:00", "date"), ("2024-05-06garbage", "date"),
    (True, "float8"), (True, "numeric"), (True, "date"), (2, "bool"), (Decimal("1"), "bool"), (7, "uuid"),
    ("1e400", "float8"), ("1e-400", "float8"), ("1e39", "float4"), ("1e-50", "float4"), ("sNaN", "numeric"),
    ("1e30", "int8"),
])
def test_lossy_or_impossible_conversions_are_refused(value: object, type_name: str) -> None:
    with pytest.raises(CoercionError):
        coerce(value, type_name)


def test_the_file_and_the_sync_convert_by_one_rule() -> None:
    assert convert(True, "text") == coerce(True, "text") == "true"
    assert convert("NaN", "numeric").is_nan()
    with pytest.raises(ValueError, match="is not a valid date value"):
        convert(dt.datetime(2024, 5, 6, 10, 30), "date")
    with pytest.raises(ValueError, match="no conversion into 'json' columns"):
        convert("{}", "json")


@given(st.floats(width=32, allow_nan=False))
def test_float4_values_are_kept_at_single_precision(number: float) -> None:
    assert coerce(repr(number), "real") == number


def test_aliases_take_their_types_rules() -> None:
    assert coerce("12", "integer") == 12
    with pytest.raises(CoercionError, match="out of range for int2"):
        coerce(40000, "smallint")
    assert coerce("2024-05-06 07:08:09+02", "timestamp with time zone") == dt.datetime(2024, 5, 6, 5, 8, 9,
                                                                                       tzinfo=dt.UTC)
