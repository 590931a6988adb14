"""The table gateway: every statement against the ERP's and the CRM's own tables is built here.

Given a table as the catalog describes it (`cdc.catalog.Table`: schema, name, columns with their types, the primary
key), it builds the reads — rows by key, by a key's text, in a condition, counted, a hierarchy's rows by depth, match
look-ups, drawing a column's default — and the writes, one record at a time or a set of them over typed arrays, under
a key of one column or several. The engine, the orchestrator and the dashboard ask it; none of them assembles SQL
against these tables (`tests/unit/test_table_gateway_only.py`).

Identifiers are quoted here (`quote_ident`, also what `cdc.mapping.filters` quotes a filter's columns with); every
value is a parameter, and each function says which, in which order; casts name the column types the catalog gives.
Statements the engine asks for per batch are built once per shape (cached). Nothing here touches a connection.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

DEPTH = "cdc_hierarchy_depth"
"""The extra column a hierarchy's rows carry (`select_by_depth`): how many ancestors of the same table stand above
the row."""
MAX_DEPTH = 1000

MATCH_INDEX = "cdc_match_index"
"""The extra column of a match look-up's rows (`match_candidates`): the index of the wanted values it matched."""

SET_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext", "int2", "int4", "int8", "numeric", "float4",
                       "float8", "bool", "date", "time", "timetz", "timestamp", "timestamptz", "uuid", "json",
                       "jsonb", "bytea"})
"""Column types written set-based (values as typed arrays). A write touching a column of any other type (an enum, a
composite) has no set-based statement: it is written one statement per row."""


class ColumnShape(Protocol):
    @property
    def type_name(self) -> str: ...


class TableShape(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def columns(self) -> Mapping[str, ColumnShape]: ...
    @property
    def primary_key(self) -> Sequence[str]: ...


class DrawnColumn(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def default(self) -> str | None: ...
    @property
    def identity(self) -> str: ...


def quote_ident(name: str) -> str:
    """An identifier quoted for SQL, whatever it holds (capitals, spaces, quotes)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _key(table: TableShape) -> tuple[str, ...]:
    return tuple(table.primary_key)


def _types(table: TableShape, columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(table.columns[c].type_name for c in columns)


def _arrays(types: Sequence[str], first: int = 1) -> str:
    return ", ".join(f"${n}::{t}[]" for n, t in enumerate(types, start=first))


def _equal(columns: Sequence[str], first: int) -> str:
    return " AND ".join(f"{quote_ident(c)} = ${n}" for n, c in enumerate(columns, start=first))


# ---------------------------------------------------------------- reads


def rows_by_key(table: TableShape, *, key_only: bool = False) -> str:
    """The rows whose key is one of the given keys; with `key_only`, only their key columns. Parameters: one array
    per key column, in the key's order, of that column's type (the n-th items of the arrays make the n-th key)."""
    key = _key(table)
    return _rows_by_key(table.schema, table.name, key, _types(table, key), key_only)


@functools.lru_cache(maxsize=1024)
def _rows_by_key(schema: str, name: str, key: tuple[str, ...], types: tuple[str, ...], key_only: bool) -> str:
    if len(key) == 1:
        columns = quote_ident(key[0]) if key_only else "*"
        return (f"SELECT {columns} FROM {qualified(schema, name)} WHERE {quote_ident(key[0])} = "
                f"ANY($1::{types[0]}[])")
    aliases = ", ".join(f"k{n}" for n in range(len(key)))
    join = " AND ".join(f"t.{quote_ident(c)} = k.k{n}" for n, c in enumerate(key))
    columns = ", ".join(f"t.{quote_ident(c)}" for c in key) if key_only else "t.*"
    return (f"SELECT {columns} FROM {qualified(schema, name)} AS t "
            f"JOIN unnest({_arrays(types)}) AS k({aliases}) ON {join}")


def row_by_key_text(table: TableShape) -> str:
    """The row with one key. Parameters: the key's parts as text (`schemas.key_text`), in the key's order; each is
    cast to its column's type in the statement, so a part that is no value of that type fails there."""
    key = _key(table)
    where = " AND ".join(f"{quote_ident(c)} = ${n}::text::{t}"
                         for n, (c, t) in enumerate(zip(key, _types(table, key), strict=True), start=1))
    return f"SELECT * FROM {qualified(table.schema, table.name)} WHERE {where}"


def select(table: TableShape, columns: Sequence[str] | None, condition: str) -> str:
    """`columns` (None: all) of the rows meeting `condition` — a condition this module or
    `cdc.mapping.filters.to_sql` built, whose parameters are the statement's."""
    names = "*" if columns is None else ", ".join(quote_ident(c) for c in columns)
    return f"SELECT {names} FROM {qualified(table.schema, table.name)} WHERE {condition}"


def count(table: TableShape, condition: str) -> str:
    """How many rows meet `condition` (parameters: the condition's)."""
    return f"SELECT count(*) FROM {qualified(table.schema, table.name)} WHERE {condition}"


def modified_after(column: str, param: int) -> str:
    """The condition: `column` is later than parameter number `param` (a timestamptz)."""
    return f"{quote_ident(column)} > ${param}::timestamptz"


def select_by_depth(table: TableShape, references: Sequence[Sequence[str]], condition: str) -> str:
    """The rows of a hierarchy meeting `condition` (parameters: the condition's), parents before children: each
    with its depth in the column `DEPTH` — the longest chain of ancestors in the table, NULL for rows in a cycle,
    which come last. `references`: the columns of each reference to a parent row, one per key column in the key's
    order; keys of several columns are compared as rows."""
    name = qualified(table.schema, table.name)
    keys = [quote_ident(c) for c in table.primary_key]
    tree = [f"cdc_k{n}" for n in range(len(keys))]

    def row(alias: str, names: list[str]) -> str:
        return f"({', '.join(f'{alias}.{n}' for n in names)})" if len(names) > 1 else f"{alias}.{names[0]}"

    quoted = [[quote_ident(c) for c in columns] for columns in references]
    roots = " AND ".join(
        f"({' OR '.join(f't.{c} IS NULL' for c in ref)} OR {row('t', ref)} = {row('t', keys)} OR NOT EXISTS "
        f"(SELECT 1 FROM {name} a WHERE {row('a', keys)} = {row('t', ref)}))" for ref in quoted)
    below = " OR ".join(f"{row('c', ref)} = {row('cdc_tree', tree)}" for ref in quoted)
    return (f"WITH RECURSIVE cdc_tree({', '.join(tree)}, cdc_depth) AS ("
            f"SELECT {', '.join(f't.{k}' for k in keys)}, 0 FROM {name} t WHERE {roots} "
            f"UNION SELECT {', '.join(f'c.{k}' for k in keys)}, cdc_tree.cdc_depth + 1 FROM cdc_tree "
            f"JOIN {name} c ON ({below}) AND {row('c', keys)} <> {row('cdc_tree', tree)} "
            f"WHERE cdc_tree.cdc_depth < {MAX_DEPTH}), "
            f"cdc_depths AS (SELECT {', '.join(tree)}, max(cdc_depth) AS cdc_depth FROM cdc_tree "
            f"GROUP BY {', '.join(tree)}) "
            f"SELECT r.*, d.cdc_depth AS {DEPTH} FROM {name} r LEFT JOIN cdc_depths d ON "
            f"{row('d', tree)} = {row('r', keys)} "
            f"WHERE {condition} ORDER BY d.cdc_depth NULLS LAST, {', '.join(f'r.{k}' for k in keys)}")


def match_candidates(table: TableShape, columns: Sequence[tuple[str, bool, bool]]) -> str:
    """The rows whose `columns` (name, compared case sensitively?, compared as text?) hold one set of wanted values;
    each row with the index of the set in the column `MATCH_INDEX`. A column compared as text compares its text
    (`lower()` on both sides where case is ignored); another compares values of its own type. Parameters: the sets'
    indexes (int[]), then one array per column, text[] or of the column's type (the n-th items of the arrays make
    the n-th set)."""
    typed = tuple((name, case_sensitive, None if as_text else table.columns[name].type_name)
                  for name, case_sensitive, as_text in columns)
    return _match_candidates(table.schema, table.name, typed)


@functools.lru_cache(maxsize=256)
def _match_candidates(schema: str, name: str, columns: tuple[tuple[str, bool, str | None], ...]) -> str:
    conditions = []
    for n, (column, case_sensitive, type_name) in enumerate(columns, start=2):
        quoted = quote_ident(column)
        if type_name is not None:
            conditions.append(f"d.{quoted} = q.v{n}")
        elif case_sensitive:
            conditions.append(f"d.{quoted}::text = q.v{n}")
        else:
            conditions.append(f"lower(d.{quoted}::text) = lower(q.v{n})")
    arrays = ", ".join(f"${n}::{'text' if c[2] is None else c[2]}[]" for n, c in enumerate(columns, start=2))
    names = ", ".join(f"v{n}" for n in range(2, len(columns) + 2))
    return (f"SELECT q.i AS {MATCH_INDEX}, d.* FROM unnest($1::int[], {arrays}) AS q(i, {names}) "
            f"JOIN {qualified(schema, name)} d ON {' AND '.join(conditions)}")


def draw(table: TableShape, column: DrawnColumn) -> tuple[str, tuple[Any, ...]]:
    """Values of `column`'s default, as text, in the order its series gives them: the statement and its parameters
    after the first, which is how many. The default is the destination's own expression (`pg_get_expr` in its
    catalog), or an identity column's sequence; ValueError when the column has neither."""
    draws = "FROM generate_series(1, $1) AS n ORDER BY n"
    if column.default is not None:
        return f"SELECT ({column.default})::text AS key {draws}", ()
    if column.identity:
        return (f"SELECT nextval(pg_get_serial_sequence($2, $3))::text AS key {draws}",
                (qualified(table.schema, table.name), column.name))
    raise ValueError(f"column {column.name} has no default")


# ---------------------------------------------------------------- writes, one record


def insert(table: TableShape, columns: tuple[str, ...]) -> str:
    """A new row. Parameters: the values of `columns`, in their order (the key's among them)."""
    return _insert(table.schema, table.name, columns)


def update(table: TableShape, columns: tuple[str, ...]) -> str:
    """`columns` of the row with one key. Parameters: their values in their order, then the key's, in its order."""
    return _update(table.schema, table.name, tuple(table.primary_key), columns)


def delete(table: TableShape) -> str:
    """The row with one key. Parameters: the key's values, in its order."""
    return _delete(table.schema, table.name, tuple(table.primary_key))


@functools.lru_cache(maxsize=4096)
def _insert(schema: str, name: str, columns: tuple[str, ...]) -> str:
    placeholders = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO {qualified(schema, name)} ({', '.join(map(quote_ident, columns))}) VALUES ({placeholders})"


@functools.lru_cache(maxsize=4096)
def _update(schema: str, name: str, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{quote_ident(c)} = ${n}" for n, c in enumerate(columns, start=1))
    return f"UPDATE {qualified(schema, name)} SET {sets} WHERE {_equal(key, len(columns) + 1)}"


@functools.lru_cache(maxsize=1024)
def _delete(schema: str, name: str, key: tuple[str, ...]) -> str:
    return f"DELETE FROM {qualified(schema, name)} WHERE {_equal(key, 1)}"


# ---------------------------------------------------------------- writes, a set of records over typed arrays
# Each returns None when a column's type has no array parameter here (`SET_TYPES`): then one statement per row.


def insert_set(table: TableShape, columns: tuple[str, ...]) -> str | None:
    """New rows. Parameters: one array per column of `columns`, in their order, of the column's type."""
    types = _types(table, columns)
    return _insert_set(table.schema, table.name, columns, types) if SET_TYPES.issuperset(types) else None


def update_set(table: TableShape, columns: tuple[str, ...]) -> str | None:
    """`columns` of rows by key, joined with the arrays' rows column by column. Parameters: one array per column
    of `columns`, then one per key column in the key's order."""
    key = _key(table)
    types = _types(table, (*columns, *key))
    return _update_set(table.schema, table.name, key, columns, types) if SET_TYPES.issuperset(types) else None


def delete_set(table: TableShape) -> str | None:
    """Rows by key. Parameters: one array per key column, in the key's order."""
    key = _key(table)
    types = _types(table, key)
    return _delete_set(table.schema, table.name, key, types) if SET_TYPES.issuperset(types) else None


@functools.lru_cache(maxsize=1024)
def _insert_set(schema: str, name: str, columns: tuple[str, ...], types: tuple[str, ...]) -> str:
    return (f"INSERT INTO {qualified(schema, name)} ({', '.join(map(quote_ident, columns))}) "
            f"SELECT * FROM unnest({_arrays(types)})")


def _joined(key: tuple[str, ...], aliases: Sequence[str]) -> str:
    return " AND ".join(f"t.{quote_ident(c)} = u.{a}" for c, a in zip(key, aliases, strict=True))


@functools.lru_cache(maxsize=1024)
def _update_set(schema: str, name: str, key: tuple[str, ...], columns: tuple[str, ...],
                types: tuple[str, ...]) -> str:
    aliases = [f"v{n}" for n in range(len(types))]
    sets = ", ".join(f"{quote_ident(c)} = u.{a}" for c, a in zip(columns, aliases, strict=False))
    return (f"UPDATE {qualified(schema, name)} AS t SET {sets} FROM unnest({_arrays(types)}) "
            f"AS u({', '.join(aliases)}) WHERE {_joined(key, aliases[len(columns):])}")


@functools.lru_cache(maxsize=1024)
def _delete_set(schema: str, name: str, key: tuple[str, ...], types: tuple[str, ...]) -> str:
    if len(key) == 1:
        return f"DELETE FROM {qualified(schema, name)} WHERE {quote_ident(key[0])} = ANY($1::{types[0]}[])"
    aliases = [f"v{n}" for n in range(len(key))]
    return (f"DELETE FROM {qualified(schema, name)} AS t USING unnest({_arrays(types)}) "
            f"AS u({', '.join(aliases)}) WHERE {_joined(key, aliases)}")
