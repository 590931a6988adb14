"""Kafka Connect's JSON, as Debezium's connectors write it through the JsonConverter. Pure: no I/O.

A record is either the bare value (`schemas.enable=false`) or an envelope `{"schema": ..., "payload": ...}` whose
schema says how each field is encoded. Debezium's PostgreSQL connector encodes, by default:

- `numeric(p, s)` and `money` as the unscaled value's big-endian two's-complement bytes in base64, the scale in
  the schema (`org.apache.kafka.connect.data.Decimal`, `decimal.handling.mode=precise`); `numeric` without a scale
  as a struct `{"scale": s, "value": <base64>}` (`io.debezium.data.VariableScaleDecimal`); with
  `decimal.handling.mode=string` as text, with `double` as a JSON number;
- `date` as days since the epoch, `timestamp` as milli- or microseconds since the epoch (by its precision,
  `time.precision.mode=adaptive`), `timestamptz` as ISO-8601 text (`ZonedTimestamp`), `time` as milli-, micro- or
  nanoseconds since midnight, `interval` as microseconds;
- `uuid`, `json`, enums and text as text, `bytea` as base64.

`decode(value, schema)` reads a value exactly by its schema. Without a schema, `read_column(value, type_name,
scale)` reads it by the column's PostgreSQL type, telling encodings apart by the JSON value's type (a numeric's
base64 text by not being a decimal literal). `encode(value, schema)` is `decode`'s inverse for the scalar types
(keys of replayed rows written as the topic's producer writes them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any

EPOCH_DAY = dt.date(1970, 1, 1)
EPOCH = dt.datetime(1970, 1, 1)

DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
DAYS = frozenset({"org.apache.kafka.connect.data.Date", "io.debezium.time.Date"})
TIMESTAMP_UNITS = {"org.apache.kafka.connect.data.Timestamp": 1_000, "io.debezium.time.Timestamp": 1_000,
                   "io.debezium.time.MicroTimestamp": 1_000_000, "io.debezium.time.NanoTimestamp": 1_000_000_000}
"""Logical timestamps counted since the epoch (no zone: PostgreSQL `timestamp`), in units per second."""
TIME_UNITS = {"org.apache.kafka.connect.data.Time": 1_000, "io.debezium.time.Time": 1_000,
              "io.debezium.time.MicroTime": 1_000_000, "io.debezium.time.NanoTime": 1_000_000_000}
DURATION_UNITS = {"io.debezium.time.MicroDuration": 1_000_000, "io.debezium.time.NanoDuration": 1_000_000_000}
ISO_TIMESTAMPS = frozenset({"io.debezium.time.ZonedTimestamp", "io.debezium.time.IsoTimestamp"})
ISO_DATES = frozenset({"io.debezium.time.IsoDate"})
ISO_TIMES = frozenset({"io.debezium.time.ZonedTime", "io.debezium.time.IsoTime"})

_DECIMAL_LITERAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*|\s*[+-]?(NaN|Infinity|inf)\s*", re.I)
_EXACT = Context(prec=1000)


class ConnectValueError(ValueError):
    """A value that does not match its schema (or, without one, its column's type)."""


def unwrap(document: Any) -> tuple[Any, dict[str, Any] | None]:
    """(payload, schema) of a JsonConverter record: the envelope's parts, or the bare value and None."""
    if isinstance(document, dict) and len(document) == 2 and "schema" in document and "payload" in document:
        schema = document["schema"]
        return document["payload"], schema if isinstance(schema, dict) else None
    return document, None


def struct_fields(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The field schemas of a struct schema, by field name ({} when there is none)."""
    if not schema or schema.get("type") != "struct":
        return {}
    return {f["field"]: f for f in schema.get("fields") or () if isinstance(f, dict) and "field" in f}


def image_columns(envelope_schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The column schemas of a Debezium change event's row images (its `after`, else its `before`, struct)."""
    fields = struct_fields(envelope_schema)
    for image in ("after", "before"):
        columns = struct_fields(fields.get(image))
        if columns:
            return columns
    return {}


# ---------------------------------------------------------------------------------------------------- decimals

def is_decimal_literal(text: str) -> bool:
    """Text a decimal can be read from ("1234.50", "-1e3", "NaN"): how a numeric's text is told from base64."""
    return _DECIMAL_LITERAL.fullmatch(text) is not None


def unscaled_bytes(number: int) -> bytes:
    """`number` as Java's BigInteger.toByteArray writes it: big-endian two's complement, as short as possible."""
    length = ((number if number >= 0 else ~number).bit_length() + 8) // 8
    return number.to_bytes(length, "big", signed=True)


def decimal_from_bytes(raw: bytes, scale: int) -> Decimal:
    """The decimal whose unscaled value is `raw` (two's complement, big-endian) and whose scale is `scale`."""
    if not raw:
        raise ConnectValueError("a decimal needs at least one byte")
    unscaled = int.from_bytes(raw, "big", signed=True)
    digits = tuple(int(d) for d in str(abs(unscaled)))
    return Decimal((1 if unscaled < 0 else 0, digits, -scale))


def decimal_to_bytes(number: Decimal, scale: int) -> bytes:
    """The unscaled bytes of `number` at `scale` (exact: a number with more decimals than `scale` is an error)."""
    if not number.is_finite():
        raise ConnectValueError(f"{number} has no unscaled value")
    scaled = number.scaleb(scale, context=_EXACT)
    if scaled != scaled.to_integral_value(context=_EXACT):
        raise ConnectValueError(f"{number} has more than {scale} decimals")
    return unscaled_bytes(int(scaled))


def decimal_from_base64(text: str, scale: int) -> Decimal:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConnectValueError(f"{text!r} is neither a decimal number nor base64 bytes") from None
    return decimal_from_bytes(raw, scale)


def _variable_scale(value: Any) -> Decimal:
    if not isinstance(value, dict) or not isinstance(value.get("scale"), int) or "value" not in value:
        raise ConnectValueError(f"{_show(value)} is not a variable-scale decimal {{scale, value}}")
    return decimal_from_base64(value["value"], value["scale"])


def _number(value: Any) -> Decimal:
    """A decimal from the JSON forms that carry one directly: a number (double or NUMERIC format) or text."""
    if isinstance(value, bool):
        raise ConnectValueError(f"{value} is a boolean, not a number")
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, str) and is_decimal_literal(value):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise ConnectValueError(f"{_show(value)} is not a decimal number")


# ---------------------------------------------------------------------------------------------------- decode

def decode(value: Any, schema: dict[str, Any] | None) -> Any:
    """`value` as the Python value its Connect `schema` describes (None stays None)."""
    if value is None or not schema:
        return value
    name, kind = schema.get("name"), schema.get("type")
    try:
        if name == DECIMAL:
            if isinstance(value, str):
                return decimal_from_base64(value, _scale(schema))
            return _number(value)  # JsonConverter's decimal.format=NUMERIC
        if name == VARIABLE_SCALE_DECIMAL:
            return _variable_scale(value)
        if name in DAYS:
            return EPOCH_DAY + dt.timedelta(days=_integer(value))
        if name in TIMESTAMP_UNITS:
            return _since(EPOCH, _integer(value), TIMESTAMP_UNITS[name])
        if name in TIME_UNITS:
            return _since(EPOCH, _integer(value), TIME_UNITS[name]).time()  # since midnight
        if name in DURATION_UNITS:
            return dt.timedelta(microseconds=_integer(value) * 1_000_000 // DURATION_UNITS[name])
        if name in ISO_TIMESTAMPS:
            return iso_timestamp(_text(value))
        if name in ISO_DATES:
            return dt.date.fromisoformat(_text(value))
        if name in ISO_TIMES:
            return _text(value)  # a time of day with its zone: kept as the text PostgreSQL reads
        if kind == "bytes":
            return base64.b64decode(_text(value), validate=True)
        if kind == "struct":
            fields = struct_fields(schema)
            return {k: decode(v, fields.get(k)) for k, v in _object(value).items()}
        if kind == "array":
            items = schema.get("items")
            return [decode(v, items) for v in _array(value)]
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        if isinstance(exc, ConnectValueError):
            raise
        raise ConnectValueError(f"{_show(value)} is not a valid {name or kind}: {exc}") from None
    return value  # integers, floats, booleans, text (and the logical types carried as text) are themselves


def iso_timestamp(text: str) -> dt.datetime:
    """An ISO-8601 timestamp as Debezium writes it ('Z' or an offset; up to nine decimals, of which Python keeps
    six)."""
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", cleaned)
    if match and len(match.group(2)) > 6:
        cleaned = f"{match.group(1)}.{match.group(2)[:6]}{match.group(3)}"
    return dt.datetime.fromisoformat(cleaned)


def read_column(value: Any, type_name: str, scale: int | None) -> Any:
    """`value`, from a record without a schema, as the Python value of a PostgreSQL column of `type_name`.

    The JSON type tells Debezium's encodings apart: a numeric's base64 bytes are text that is not a decimal
    literal (the column's `scale` then gives the scale; text that is both, e.g. "1234", is read as the number),
    its variable-scale form an object; a date's days and a timestamp's units since the epoch are integers
    (nanoseconds from 10^17, microseconds from 10^14, else milliseconds). Anything else is returned as it is."""
    if value is None:
        return None
    if type_name in ("numeric", "decimal", "money"):
        if isinstance(value, dict):
            return _variable_scale(value)
        if isinstance(value, str) and not is_decimal_literal(value):
            if scale is None:
                raise ConnectValueError(f"{value!r} is not a decimal number (nor base64 bytes of a known scale)")
            return decimal_from_base64(value, scale)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if type_name == "date":
            return EPOCH_DAY + dt.timedelta(days=value)
        if type_name in ("timestamp", "timestamptz"):
            units = 1_000_000_000 if abs(value) >= 10**17 else 1_000_000 if abs(value) >= 10**14 else 1_000
            moment = _since(EPOCH, value, units)
            return moment.replace(tzinfo=dt.UTC) if type_name == "timestamptz" else moment
    if isinstance(value, str) and type_name in ("timestamp", "timestamptz"):
        try:
            return iso_timestamp(value)
        except ValueError:
            return value
    return value


# ---------------------------------------------------------------------------------------------------- encode

class Unsupported(ConnectValueError):
    """A schema `encode` cannot write exactly as Debezium does."""


def encode(value: Any, schema: dict[str, Any]) -> Any:
    """The JSON value Debezium's JsonConverter writes for `value` (a Python value or its canonical text) under
    `schema`. Unsupported for the types whose text form Debezium chooses itself (zoned times, ISO timestamps)."""
    if value is None:
        return None
    name, kind = schema.get("name"), schema.get("type")
    try:
        if name == DECIMAL:
            number = value if isinstance(value, Decimal) else _number(value)
            return base64.b64encode(decimal_to_bytes(number, _scale(schema))).decode()
        if name == VARIABLE_SCALE_DECIMAL:
            number = value if isinstance(value, Decimal) else _number(value)
            scale = max(0, -number.as_tuple().exponent)  # type: ignore[operator]
            return {"scale": scale, "value": base64.b64encode(decimal_to_bytes(number, scale)).decode()}
        if name in DAYS:
            day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            return (day - EPOCH_DAY).days
        if name in TIMESTAMP_UNITS:
            moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            delta = moment - EPOCH
            micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            return micros * TIMESTAMP_UNITS[name] // 1_000_000
    except (ValueError, TypeError, OverflowError, InvalidOperation) as exc:
        if isinstance(exc, ConnectValueError):
            raise
        raise ConnectValueError(f"{_show(value)} cannot be written as {name}: {exc}") from None
    if name is not None and name not in ("io.debezium.data.Uuid", "io.debezium.data.Json", "io.debezium.data.Enum",
                                         "io.debezium.data.Xml", "io.debezium.data.Ltree"):
        raise Unsupported(f"writing {name} values is not supported")
    if kind in ("int8", "int16", "int32", "int64"):
        return int(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() in ("true", "t", "1")
    if kind == "string":
        return str(value)
    raise Unsupported(f"writing {kind} values is not supported")


# ---------------------------------------------------------------------------------------------------- helpers

def _scale(schema: dict[str, Any]) -> int:
    try:
        return int((schema.get("parameters") or {})["scale"])
    except (KeyError, TypeError, ValueError):
        raise ConnectValueError("a Decimal schema without a scale parameter") from None


def _since(origin: dt.datetime, count: int, units: int) -> dt.datetime:
    seconds, rest = divmod(count, units)
    return origin + dt.timedelta(seconds=seconds, microseconds=rest * 1_000_000 // units)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConnectValueError(f"{_show(value)} is not an integer")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConnectValueError(f"{_show(value)} is not text")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConnectValueError(f"{_show(value)} is not an object")
    return value


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConnectValueError(f"{_show(value)} is not an array")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
