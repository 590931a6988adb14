"""How a PostgreSQL value is read, written and compared — one set of rules for capture, the engine and configuration
validation. Pure: no database connection.

- `vocabulary`: the types (catalog names, aliases, families, integer bounds, boolean spellings, OIDs);
- `reading`: PostgreSQL's text output (what capture receives) -> JSON-ready values;
- `writing`: `coerce`, an event's or the file's value -> the Python value asyncpg writes for a column type;
  `convert`, the same rule by family (filters and value maps compare with it);
- `comparing`: `canonical`, the form values are compared and fingerprinted in, and `key_text`.

Writing follows PostgreSQL's assignment where it loses nothing, and refuses (`CoercionError`, naming the value;
the sync fails that record with the column named) where PostgreSQL would cut or round:

- text types: a text as it is; a boolean as `true` / `false` (PostgreSQL's cast); a number as plain decimal text
  (a float as PostgreSQL prints it: shortest form, `NaN`, `Infinity`); a date or timestamp as ISO-8601 (`T`,
  offsets `+00:00`; not PostgreSQL's text, which depends on the session); JSON arrays and objects as JSON text. NUL
  and lone surrogates are refused (PostgreSQL cannot store them). Text longer than a `varchar(n)` is cut to `n`
  (PostgreSQL's explicit cast; its assignment refuses) — configuration validation refuses it instead: its only
  stricter check.
- int2/int4/int8: a number or text that is an integer exactly (`12`, `'1.0'`, `'1e3'`) within the type's bounds;
  fractions (PostgreSQL would round them), booleans, NaN and infinities are refused.
- numeric: a number or its text, NaN and ±Infinity included (PostgreSQL 14+); booleans refused. `numeric(p, s)`:
  rounded to `s` decimals half away from zero, as PostgreSQL stores it; an infinity is refused. A value past the
  precision `p` is refused by PostgreSQL when written.
- float4/float8: a number or its text, NaN and ±Infinity included; booleans, overflow and a non-zero value that
  underflows to zero are refused, as PostgreSQL does; float4 values are rounded to single precision, as stored.
- bool: a boolean; `t true y yes on 1` / `f false n no off 0` in any case; the integers 0 and 1.
- date: a date, its ISO text, days since 1970 (Debezium), or a timestamp (or its text) at midnight — an aware one in
  UTC. A timestamp with a time of day is refused: the day alone would lose it (PostgreSQL cuts it; a sync that did
  would report a value the destination does not hold, and a two-way field would never compare equal). A
  `format_date` transform writes the day on purpose.
- timestamp/timestamptz: a timestamp, a date (its midnight), ISO text (`T` or space, `Z` or an offset), or micro-
  / milliseconds since 1970 (Debezium); a timestamp without time zone is UTC (the sync's sessions run in UTC).
  Dates and timestamps Python cannot hold (±infinity, BC, years past 9999) are carried exactly (`cdc.temporal`).
- uuid: a UUID or its text. json/jsonb: a text that is JSON as it is (Debezium's form); any other value as JSON.
- any other type: the value as it is, for asyncpg's codec.

`canonical(coerce(v, t))` equals `canonical` of what PostgreSQL then holds, read back by asyncpg; and capture's
reading of PostgreSQL's text, written again, compares equal (tests/integration/test_value_typing.py).
"""

from cdc.values.comparing import canonical, key_text
from cdc.values.vocabulary import (
    INTEGER_TYPES,
    KINDS,
    NUMBER_KINDS,
    TIME_KINDS,
    kind_of,
    kind_of_value,
    type_name,
)
from cdc.values.writing import CoercionError, coerce, convert, key_values

__all__ = [
    "INTEGER_TYPES", "KINDS", "NUMBER_KINDS", "TIME_KINDS", "CoercionError", "canonical", "coerce", "convert",
    "key_text", "key_values", "kind_of", "kind_of_value", "type_name",
]
