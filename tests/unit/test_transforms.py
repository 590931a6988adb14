from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from cdc.mapping.model import FieldMapping, Transform
from cdc.mapping.transforms import TransformError, ValueMappingError, apply, map_value

TRANSFORMS: TypeAdapter[list[Transform]] = TypeAdapter(list[Transform])


def run(transforms: list[dict[str, Any]], value: Any) -> Any:
    return apply(TRANSFORMS.validate_python(transforms), value)


@pytest.mark.parametrize(("transform", "value", "expected"), [
    ({"op": "trim"}, "  a b \t\n", "a b"),
    ({"op": "upper"}, "straße", "STRASSE"),
    ({"op": "lower"}, "ÄB", "äb"),
    ({"op": "title"}, "jane o'neil-smith", "Jane O'Neil-Smith"),
    ({"op": "replace", "old": "-", "new": ""}, "12-34-56", "123456"),
    ({"op": "replace", "old": "."}, "a.b.c", "abc"),
    ({"op": "regex", "pattern": r"[^0-9+]", "replacement": ""}, "+31 (0)20-123", "+31020123"),
    ({"op": "regex", "pattern": r"^(\w+)@(\w+)$", "replacement": r"\2:\1"}, "joe@acme", "acme:joe"),
    ({"op": "truncate", "length": 3}, "abcdef", "abc"),
    ({"op": "truncate", "length": 10}, "abc", "abc"),
    ({"op": "round", "digits": 2}, Decimal("2.675"), Decimal("2.68")),
    ({"op": "round", "digits": 2}, 2.675, 2.68),
    ({"op": "round", "digits": 0}, Decimal("-2.5"), Decimal("-3")),
    ({"op": "round", "digits": -2}, 1250, 1300),
    ({"op": "round", "digits": 2}, 7, 7),
    ({"op": "format_date"}, date(2024, 2, 29), "2024-02-29"),
    ({"op": "format_date", "format": "%d.%m.%Y %H:%M"}, datetime(2024, 2, 29, 13, 5), "29.02.2024 13:05"),
    ({"op": "format_date", "format": "%d/%m/%Y"}, "2024-02-29T10:00:00+00:00", "29/02/2024"),
    ({"op": "format_number"}, Decimal("3.14159"), "3.14"),
    ({"op": "format_number", "format": "{:,.1f} EUR"}, 1234567.25, "1,234,567.2 EUR"),
    ({"op": "format_number", "format": "{:05d}"}, 42, "00042"),
])
def test_each_transform(transform: dict[str, Any], value: Any, expected: Any):
    result = run([transform], value)
    assert result == expected
    assert type(result) is type(expected)


def test_transforms_run_in_order():
    steps = [{"op": "trim"}, {"op": "lower"}, {"op": "truncate", "length": 5}]
    assert run(steps, "  HELLO World ") == "hello"
    assert run([{"op": "round", "digits": 1}, {"op": "format_number", "format": "{:.2f}"}], 1.25) == "1.30"


@pytest.mark.parametrize("transform", [
    {"op": "trim"}, {"op": "upper"}, {"op": "lower"}, {"op": "title"}, {"op": "replace", "old": "a"},
    {"op": "regex", "pattern": "a"}, {"op": "round"}, {"op": "truncate", "length": 1}, {"op": "format_date"},
    {"op": "format_number"},
])
def test_null_passes_every_transform_unchanged(transform: dict[str, Any]):
    assert run([transform], None) is None


def test_no_transforms_leave_the_value_alone():
    assert apply([], Decimal("1.0")) == Decimal("1.0")


@pytest.mark.parametrize(("transform", "value", "message"), [
    ({"op": "upper"}, 12, "upper applies to text, not int 12"),
    ({"op": "truncate", "length": 2}, Decimal("1.234"), "truncate applies to text"),
    ({"op": "round"}, "1.5", "round applies to numbers, not str '1.5'"),
    ({"op": "round"}, True, "round applies to numbers"),
    ({"op": "format_number"}, "x", "format_number applies to numbers"),
    ({"op": "format_date"}, "yesterday", "format_date applies to dates"),
    ({"op": "format_date"}, 20240229, "format_date applies to dates"),
])
def test_a_transform_refuses_values_it_cannot_take(transform: dict[str, Any], value: Any, message: str):
    with pytest.raises(TransformError, match=message):
        run([transform], value)


PAYMENT_TERMS = FieldMapping(erp="payment_terms_code", crm="paymenttermscode",
                             value_map={"": None, "14D": 1, "30D": 2, "COD": "4"})


def test_value_map_translates_erp_values_towards_the_crm():
    assert map_value(PAYMENT_TERMS, "30D", "crm") == 2
    assert map_value(PAYMENT_TERMS, "COD", "crm") == "4"
    assert map_value(PAYMENT_TERMS, "", "crm") is None
    assert map_value(PAYMENT_TERMS, None, "crm") is None


def test_value_map_translates_crm_values_back_comparing_as_text():
    assert map_value(PAYMENT_TERMS, 2, "erp") == "30D"
    assert map_value(PAYMENT_TERMS, "2", "erp") == "30D"
    assert map_value(PAYMENT_TERMS, 4, "erp") == "COD"
    assert map_value(PAYMENT_TERMS, None, "erp") == ""


def test_erp_keys_compare_as_text():
    numeric_codes = FieldMapping(erp="status", crm="statuscode", value_map={1: "open", 2: "closed"})
    assert map_value(numeric_codes, 1, "crm") == "open"
    assert map_value(numeric_codes, "closed", "erp") == "2"
    assert map_value(numeric_codes, None, "erp") is None


def test_an_unknown_value_names_field_and_value():
    with pytest.raises(ValueMappingError, match=r"field payment_terms_code <-> paymenttermscode: value '90D' "
                                                r"is not in the value map \(towards crm\)"):
        map_value(PAYMENT_TERMS, "90D", "crm")
    with pytest.raises(ValueMappingError, match="value 7 is not in the value map") as caught:
        map_value(PAYMENT_TERMS, 7, "erp")
    assert (caught.value.value, caught.value.towards) == (7, "erp")


def test_a_field_without_value_map_passes_values_through():
    assert map_value(FieldMapping(erp="a", crm="b"), "x", "crm") == "x"
