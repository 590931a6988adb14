"""The filter language, evaluated on a row in Python and compiled to parameterised SQL, with one meaning.

Both sides are two-valued: a NULL column satisfies only `ne` (IS DISTINCT FROM), `not_in`, `not_like`,
`not_ilike` and `is_null`; every other condition on NULL is false. Filter values are converted to the column's
type first (`convert` in cdc.values, the rule values are written by): in Python to the type of the row's value, in
SQL to the column's catalog type, and the converted value goes to PostgreSQL as a parameter cast to that type. Text
compares by code point on both sides (`COLLATE "C"`); `starts_with`, `contains` and the LIKE family apply to text
columns only. A LIKE pattern is read once (`cdc.mapping.patterns`) into a regular expression for Python and a
backslash-escaped pattern for SQL.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any

from cdc.errors import ConfigError
from cdc.mapping import patterns
from cdc.mapping.model import LIKE_OPS, AllOf, AnyOf, Condition, Filter, Not
from cdc.table_gateway import quote_ident
from cdc.values import KINDS, convert, kind_of_value, type_name


class FilterValueError(ValueError):
    """A filter cannot be applied to a row's value (its value does not convert, or the op needs text)."""


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "starts_with": str.startswith, "contains": operator.contains,
}

_SQL_COMPARE = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

_TEXT_ONLY = ("starts_with", "contains", *LIKE_OPS)
_SQL_LIKE = {"like": "LIKE", "not_like": "LIKE", "ilike": "ILIKE", "not_ilike": "ILIKE"}


def matches(f: Filter | None, row: Mapping[str, Any]) -> bool:
    """Whether `row` (column -> value as asyncpg returns it) is inside the filter; no filter: every row."""
    if f is None:
        return True
    if isinstance(f, Condition):
        return _holds(f, row[f.field])
    if isinstance(f, AllOf):
        return all(matches(sub, row) for sub in f.all)
    if isinstance(f, AnyOf):
        return any(matches(sub, row) for sub in f.any)
    return not matches(f.not_, row)


def _holds(c: Condition, value: Any) -> bool:
    if c.op == "is_null":
        return value is None
    if c.op == "not_null":
        return value is not None
    if value is None:
        return c.op in ("ne", "not_in", "not_like", "not_ilike")
    if c.op in _TEXT_ONLY and not isinstance(value, str):
        raise FilterValueError(f"filter on {c.field}: '{c.op}' applies to text, not {type(value).__name__}")
    if c.op in LIKE_OPS:
        return pattern_of(c).matches(value) != c.op.startswith("not_")
    if c.op in ("in", "not_in"):
        found = value in [_like(c, item, value) for item in c.value]
        return found if c.op == "in" else not found
    wanted = _like(c, c.value, value)
    if c.op == "ne":
        return value != wanted
    return _COMPARE[c.op](value, wanted)


def _like(c: Condition, wanted: Any, example: Any) -> Any:
    kind = kind_of_value(example)
    if kind is None:
        return wanted
    try:
        return _converted(wanted, kind)
    except ValueError as exc:
        raise FilterValueError(f"filter on {c.field}: {exc}") from None
    except TypeError:  # an unhashable filter value: converted every time
        return convert(wanted, kind)


@functools.lru_cache(maxsize=1024, typed=True)
def _converted(wanted: Any, kind: str) -> Any:
    """A filter value converted once per column kind (filters are evaluated for every record)."""
    return convert(wanted, kind)


def pattern_of(c: Condition) -> patterns.Pattern:
    """The LIKE pattern of a like/not_like/ilike/not_ilike condition (read once, then cached)."""
    return patterns.parse(c.value, c.escape, c.op in ("ilike", "not_ilike"))


def conditions(f: Filter | None) -> list[Condition]:
    """Every condition of a filter, in reading order."""
    if f is None:
        return []
    if isinstance(f, Condition):
        return [f]
    if isinstance(f, Not):
        return conditions(f.not_)
    return [c for sub in (f.all if isinstance(f, AllOf) else f.any) for c in conditions(sub)]


def to_sql(f: Filter | None, columns: Mapping[str, str], first_param: int = 1) -> tuple[str, list[Any]]:
    """A boolean SQL expression and its parameters (numbered from `first_param`).

    `columns` maps each column of the filtered table to its catalog type name ('varchar', 'int4', ...). The
    expression names columns unqualified and quoted; values travel only as parameters.
    """
    params: list[Any] = []
    return ("TRUE" if f is None else _sql(f, columns, params, first_param)), params


def _sql(f: Filter, columns: Mapping[str, str], params: list[Any], first: int) -> str:
    if isinstance(f, Condition):
        return _condition_sql(f, columns, params, first)
    if isinstance(f, AllOf):
        return "(" + " AND ".join(_sql(sub, columns, params, first) for sub in f.all) + ")"
    if isinstance(f, AnyOf):
        return "(" + " OR ".join(_sql(sub, columns, params, first) for sub in f.any) + ")"
    return f"(NOT {_sql(f.not_, columns, params, first)})"


def _condition_sql(c: Condition, columns: Mapping[str, str], params: list[Any], first: int) -> str:
    if c.field not in columns:
        raise ConfigError(f"filter on {c.field}: no such column")
    column = quote_ident(c.field)
    if c.op == "is_null":
        return f"{column} IS NULL"
    if c.op == "not_null":
        return f"{column} IS NOT NULL"
    pg_type = type_name(columns[c.field])
    kind = KINDS.get(pg_type)
    if kind is None:
        raise ConfigError(f"filter on {c.field}: columns of type {columns[c.field]!r} cannot be filtered")
    if c.op in _TEXT_ONLY and kind != "text":
        raise ConfigError(f"filter on {c.field}: '{c.op}' applies to text columns, not {pg_type}")
    cast = "text" if kind == "text" else pg_type
    compared = f'{column} COLLATE "C"' if kind == "text" else column
    try:
        if c.op in ("in", "not_in"):
            params.append([convert(item, kind) for item in c.value])
        elif c.op in LIKE_OPS:
            params.append(pattern_of(c).sql())
        else:
            params.append(convert(c.value, kind))
    except ValueError as exc:
        raise ConfigError(f"filter on {c.field}: {exc}") from None
    param = f"${first + len(params) - 1}::{cast}"
    if c.op in LIKE_OPS:
        test = f"{compared} {_SQL_LIKE[c.op]} {param}"
        if c.op.startswith("not_"):
            return f"({column} IS NULL OR NOT ({test}))"
        return f"({column} IS NOT NULL AND {test})"
    if c.op == "ne":
        return f"{column} IS DISTINCT FROM {param}"
    if c.op == "not_in":
        return f"({column} IS NULL OR {compared} <> ALL({param}[]))"
    if c.op == "in":
        test = f"{compared} = ANY({param}[])"
    elif c.op == "starts_with":
        test = f"starts_with({compared}, {param})"
    elif c.op == "contains":
        test = f"strpos({compared}, {param}) > 0"
    else:
        test = f"{compared} {_SQL_COMPARE[c.op]} {param}"
    return f"({column} IS NOT NULL AND {test})"


def describe(f: Filter | None) -> str:
    """A filter as one readable line, e.g. `statecode eq 0 and customertypecode eq 3`."""
    if f is None:
        return ""
    return _describe(f, top=True)


def _describe(f: Filter, top: bool = False) -> str:
    if isinstance(f, Condition):
        if f.op in ("is_null", "not_null"):
            return f"{f.field} {f.op}"
        value = "[" + ", ".join(map(_show, f.value)) + "]" if isinstance(f.value, list) else _show(f.value)
        escape = f" escape {f.escape!r}" if f.escape != "\\" else ""
        return f"{f.field} {f.op} {value}{escape}"
    if isinstance(f, Not):
        return f"not ({_describe(f.not_, top=True)})"
    joined = " and ".join(map(_describe, f.all)) if isinstance(f, AllOf) else " or ".join(
        map(_describe, f.any))
    return joined if top else f"({joined})"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)
