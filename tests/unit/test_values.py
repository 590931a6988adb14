"""Typing event values for a column: hostile input becomes a CoercionError naming the value, never a crash."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.values import CoercionError, canonical, coerce


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
