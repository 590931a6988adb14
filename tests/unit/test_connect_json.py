"""Kafka Connect JSON as a stock Debezium PostgreSQL connector writes it: real records (tests/fixtures/debezium),
and the decimal encodings' round trips."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import connect_json
from schemas.connect_json import ConnectValueError, decode, encode, image_columns, read_column, unwrap
from tests.unit.debezium_records import record

DECIMAL_2 = {"type": "bytes", "name": connect_json.DECIMAL, "parameters": {"scale": "2"}}


def test_every_column_type_of_a_real_event_decodes_by_its_schema() -> None:
    value = json.loads(record("types_demo-c").value)
    columns = image_columns(value["schema"])
    after = value["payload"]["after"]
    decoded = {name: decode(after[name], columns[name]) for name in after}
    assert decoded == {
        "id": 1, "amount": Decimal("-1234.56"), "free": Decimal("3.14159"), "money_col": Decimal("12.34"),
        "d": dt.date(2024, 2, 29), "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "ts3": dt.datetime(2024, 1, 2, 3, 4, 5, 123000),
        "tstz": dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.UTC),
        "t": dt.time(13, 14, 15, 500000), "iv": dt.timedelta(days=1, hours=2),
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": '{"a": [1, 2]}', "b": True,
        "by": b"\xde\xad\xbe\xef", "f": 1.5, "r": 2.25, "sm": 7,
    }
    assert str(decoded["amount"]) == "-1234.56"  # the scale is the schema's, not a normalised one


def test_the_customer_that_was_dead_lettered_decodes() -> None:
    value = json.loads(record("customer-r").value)
    columns = image_columns(value["schema"])
    assert value["payload"]["after"]["credit_limit"] == "B6Eg"
    assert decode("B6Eg", columns["credit_limit"]) == Decimal("5000.00")


def test_the_envelope_is_unwrapped_only_when_it_is_one() -> None:
    assert unwrap({"schema": {"type": "int32"}, "payload": 5}) == (5, {"type": "int32"})
    assert unwrap({"payload": 5}) == ({"payload": 5}, None)
    assert unwrap({"schema": 1, "payload": 2, "op": "c"}) == ({"schema": 1, "payload": 2, "op": "c"}, None)
    assert unwrap(None) == (None, None)


@pytest.mark.parametrize(("value", "type_name", "scale", "expected"), [
    ("B6Eg", "numeric", 2, Decimal("5000.00")),           # precise, without a schema: the column's scale
    ("/h3A", "numeric", 2, Decimal("-1234.56")),
    ({"scale": 5, "value": "BMsv"}, "numeric", None, Decimal("3.14159")),  # numeric without a scale
    ("1234.50", "numeric", 2, "1234.50"),                 # decimal.handling.mode=string (or our own events)
    (1234.5, "numeric", 2, 1234.5),                       # decimal.handling.mode=double
    (19782, "date", None, dt.date(2024, 2, 29)),
    (1704164645123456, "timestamp", None, dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    (1704164645123, "timestamp", None, dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),
    ("2024-01-02T01:04:05.123456Z", "timestamptz", None, dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.UTC)),
    ("2024-01-02T01:04:05.123456789Z", "timestamptz", None,
     dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.UTC)),
    ("C00001", "varchar", None, "C00001"), (7, "int4", None, 7), (True, "bool", None, True),
])
def test_without_a_schema_the_column_type_tells_the_encoding(value: object, type_name: str, scale: int | None,
                                                             expected: object) -> None:
    assert read_column(value, type_name, scale) == expected


@pytest.mark.parametrize(("value", "schema"), [
    ("not base64!", DECIMAL_2), ("", DECIMAL_2), (True, DECIMAL_2), ("x", {"type": "int32",
                                                                       "name": "io.debezium.time.Date"}),
    ({"scale": "2", "value": "AA=="}, {"type": "struct", "name": connect_json.VARIABLE_SCALE_DECIMAL}),
    ("AA==", {"type": "bytes", "name": connect_json.DECIMAL}),  # no scale parameter
])
def test_values_that_do_not_match_their_schema_are_errors(value: object, schema: dict) -> None:
    with pytest.raises(ConnectValueError):
        decode(value, schema)


def test_base64_text_of_a_numeric_without_a_known_scale_is_an_error() -> None:
    with pytest.raises(ConnectValueError):
        read_column("B6Eg", "numeric", None)


def java_to_byte_array(number: int) -> bytes:
    """BigInteger.toByteArray: the shortest big-endian two's complement that holds `number`."""
    length = 1
    while not -(1 << (8 * length - 1)) <= number < (1 << (8 * length - 1)):
        length += 1
    return number.to_bytes(length, "big", signed=True)


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_unscaled_bytes_are_javas(number: int) -> None:
    assert connect_json.unscaled_bytes(number) == java_to_byte_array(number)


@given(st.integers(min_value=0, max_value=12), st.integers(min_value=-(10**30), max_value=10**30))
def test_precise_decimals_round_trip_at_their_scale(scale: int, unscaled: int) -> None:
    number = Decimal(unscaled).scaleb(-scale, context=Context(prec=100))
    schema = {"type": "bytes", "name": connect_json.DECIMAL, "parameters": {"scale": str(scale)}}
    wire = encode(number, schema)
    assert base64.b64decode(wire) == java_to_byte_array(unscaled)
    back = decode(wire, schema)
    assert back == number and back.as_tuple().exponent == -scale
    if not connect_json.is_decimal_literal(wire):  # e.g. "1234" is base64 too: read as the number it spells
        assert read_column(wire, "numeric", scale) == number


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12))
def test_variable_scale_decimals_round_trip(number: Decimal) -> None:
    schema = {"type": "struct", "name": connect_json.VARIABLE_SCALE_DECIMAL}
    assert decode(encode(number, schema), schema) == number


def test_a_number_with_more_decimals_than_the_scale_is_not_written() -> None:
    with pytest.raises(ConnectValueError):
        encode(Decimal("1.005"), DECIMAL_2)


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_timestamps_round_trip_in_each_unit(moment: dt.datetime) -> None:
    for name in ("io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp"):
        schema = {"type": "int64", "name": name}
        assert decode(encode(moment, schema), schema) == moment
    millis = {"type": "int64", "name": "io.debezium.time.Timestamp"}
    assert decode(encode(moment, millis), millis) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@given(st.dates())
def test_dates_round_trip_as_days(day: dt.date) -> None:
    schema = {"type": "int32", "name": "io.debezium.time.Date"}
    assert decode(encode(day.isoformat(), schema), schema) == day


def test_types_debezium_formats_itself_are_not_written() -> None:
    with pytest.raises(connect_json.Unsupported):
        encode("2024-01-02T01:04:05Z", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"})
