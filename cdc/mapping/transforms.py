"""Carrying one value across: field transforms, value maps, and truncation to the destination's length.

NULL passes every transform unchanged. Text transforms take text only and number transforms numbers only: a
value of another type is a TransformError (a per-record failure, not a silent conversion).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cdc.mapping.model import (
    FieldMapping,
    FormatDate,
    FormatNumber,
    Lower,
    RegexReplace,
    Replace,
    Round,
    Title,
    Transform,
    Trim,
    Truncate,
    Upper,
)
from cdc.pair import System
from cdc.values import convert, kind_of_value


class TransformError(ValueError):
    """A transform cannot take this value."""


class ValueMappingError(ValueError):
    """A value that the field's value map does not list."""

    def __init__(self, field: FieldMapping, value: Any, towards: System) -> None:
        self.field, self.value, self.towards = field, value, towards
        shown = repr(value) if isinstance(value, str | bool) or value is None else str(value)
        super().__init__(f"field {field.label}: value {shown} is not in the value map (towards {towards})")


def apply(transforms: Sequence[Transform], value: Any) -> Any:
    for transform in transforms:
        if value is None:
            return None
        value = _apply_one(transform, value)
    return value


NORMALISING_PASSES = 8


def normalise(steps: Sequence[Transform], value: Any) -> Any:
    """A field's normalisation: its transforms applied until the value no longer changes. Each transform a
    normalisation may use gives the same result twice, but a sequence of them need not (`truncate` then
    `upper` can lengthen 'ß' again); the value both sides hold is the one that stays."""
    for _ in range(NORMALISING_PASSES):
        if value is None:
            return None
        again = apply(steps, value)
        if again == value:
            return value
        value = again
    return value


def _apply_one(t: Transform, value: Any) -> Any:
    if isinstance(t, Trim | Upper | Lower | Title | Replace | RegexReplace | Truncate):
        text = _text(t, value)
        if isinstance(t, Trim):
            return text.strip()
        if isinstance(t, Upper):
            return text.upper()
        if isinstance(t, Lower):
            return text.lower()
        if isinstance(t, Title):
            return text.title()
        if isinstance(t, Replace):
            return text.replace(t.old, t.new)
        if isinstance(t, RegexReplace):
            return re.sub(t.pattern, t.replacement, text)
        return text[:t.length]
    if isinstance(t, Round):
        return _round(_number(t, value), t.digits)
    if isinstance(t, FormatNumber):
        return t.format.format(_number(t, value))
    return _moment(t, value).strftime(t.format)


def _text(t: Transform, value: Any) -> str:
    if not isinstance(value, str):
        raise TransformError(f"{t.op} applies to text, not {type(value).__name__} {value!r}")
    return value


def _number(t: Transform, value: Any) -> int | float | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TransformError(f"{t.op} applies to numbers, not {type(value).__name__} {value!r}")
    return value


def _round(value: int | float | Decimal, digits: int) -> int | float | Decimal:
    """Half away from zero, in decimal (so 2.675 rounds to 2.68 as on paper, not 2.67 as binary floats do)."""
    exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    try:
        rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise TransformError(f"round to {digits} digits cannot hold {value!r}") from None
    if isinstance(value, int):
        return int(rounded)
    return float(rounded) if isinstance(value, float) else rounded


def _moment(t: FormatDate, value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise TransformError(f"{t.op} applies to dates and ISO date text, not {type(value).__name__} {value!r}")


def map_value(field: FieldMapping, value: Any, towards: System) -> Any:
    """The field's value map applied: ERP value -> CRM value towards the CRM, the reverse towards the ERP.

    A key (towards the CRM) or a mapped value (towards the ERP) matches the record's value when it converts to that
    value's type and is equal there — what `cdc mappings validate` checks them against (`cdc.values.convert`): a
    boolean column's `true`, `'true'`, `yes` and `1` all match True, a numeric column's `'30'` matches 30.00, an
    integer option 2 matches `'2'`. NULL maps to NULL unless the map lists it (`'': null` turns an empty ERP code
    into a NULL CRM option and back).
    """
    if field.value_map is None:
        return value
    if towards == "crm":
        if value is None:
            return None
        for key, mapped in field.value_map.items():
            if same_value(key, value):
                return mapped
        raise ValueMappingError(field, value, towards)
    for key, mapped in field.value_map.items():
        if (mapped is None and value is None) or (mapped is not None and value is not None and
                                                  same_value(mapped, value)):
            return key
    if value is None:
        return None
    raise ValueMappingError(field, value, towards)


def same_value(written: Any, value: Any) -> bool:
    """Whether `written` (a value-map key or value, as YAML gave it) stands for the typed `value`."""
    kind = kind_of_value(value)
    if kind is None:
        return str(written) == str(value)
    try:
        return bool(convert(written, kind) == value)
    except ValueError:
        return False
