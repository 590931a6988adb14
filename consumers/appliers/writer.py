"""Writing decided rows into one system table, idempotently.

An insert only ever creates: it never lands on an existing row (a record that already holds the key fails with a
clear error instead of being overwritten; docs/exactly-once.md, "a creation only ever creates"). Updates set only
the decided columns, deletes are by key. A batch is written in one transaction; when it fails, each
record is retried in its own savepoint so one bad record fails alone.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from cdc.database import qualified, quote_ident
from cdc.values import CoercionError, coerce, key_values
from consumers.decisions.outcome import Write
from consumers.decisions.plan import ColumnShape


class TableShape(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def columns(self) -> Mapping[str, ColumnShape]: ...
    @property
    def primary_key(self) -> list[str]: ...


@dataclass(frozen=True)
class TableWrite:
    table: TableShape
    write: Write
    ref: int  # the caller's index of the record this write belongs to


def _typed(table: TableShape, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        column = table.columns[name]
        out[name] = coerce(value, column.type_name, column.max_length, getattr(column, "scale", None))
    return out


def _statement(tw: TableWrite) -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    """The SQL text (shared by writes of the same shape), the arguments of one write, and the columns they go to."""
    table, write = tw.table, tw.write
    if len(table.primary_key) > 1:
        return _composite_statement(tw)
    key_column = table.primary_key[0]
    key = coerce(write.key, table.columns[key_column].type_name)
    if write.kind == "delete":
        return _sql(table.schema, table.name, key_column, "delete", ()), (key,), (key_column,)
    values = _typed(table, write.values)
    if write.kind == "insert":
        values[key_column] = key
        columns = tuple(values)
        return _sql(table.schema, table.name, key_column, "insert", columns), tuple(values.values()), columns
    columns = tuple(values)
    return (_sql(table.schema, table.name, key_column, "update", columns), (*values.values(), key),
            (*columns, key_column))


@functools.lru_cache(maxsize=4096)
def _sql(schema: str, table: str, key_column: str, kind: str, columns: tuple[str, ...]) -> str:
    """The statement of one write shape, built once (identifiers quoted; every value a parameter)."""
    name = qualified(schema, table)
    if kind == "delete":
        return f"DELETE FROM {name} WHERE {quote_ident(key_column)} = $1"
    if kind == "insert":
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        return f"INSERT INTO {name} ({', '.join(quote_ident(c) for c in columns)}) VALUES ({placeholders})"
    sets = ", ".join(f"{quote_ident(c)} = ${i}" for i, c in enumerate(columns, start=1))
    return f"UPDATE {name} SET {sets} WHERE {quote_ident(key_column)} = ${len(columns) + 1}"


def _composite_statement(tw: TableWrite) -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    """`_statement` for a key of several columns: the key's columns (from the key text) come last, in the primary
    key's order, for a delete or an update; an insert writes them among its columns."""
    table, write = tw.table, tw.write
    names = tuple(table.primary_key)
    key = key_values(write.key, names, [table.columns[c].type_name for c in names])
    if write.kind == "delete":
        return _composite_sql(table.schema, table.name, names, "delete", ()), tuple(key.values()), names
    values = _typed(table, write.values)
    if write.kind == "insert":
        values.update(key)
        columns = tuple(values)
        return (_composite_sql(table.schema, table.name, names, "insert", columns), tuple(values.values()),
                columns)
    columns = tuple(c for c in values if c not in key)
    return (_composite_sql(table.schema, table.name, names, "update", columns),
            (*(values[c] for c in columns), *key.values()), (*columns, *names))


@functools.lru_cache(maxsize=1024)
def _composite_sql(schema: str, table: str, key_columns: tuple[str, ...], kind: str,
                   columns: tuple[str, ...]) -> str:
    if kind == "insert":
        return _sql(schema, table, key_columns[0], kind, columns)
    name = qualified(schema, table)
    first = len(columns) + 1
    where = " AND ".join(f"{quote_ident(c)} = ${n}" for n, c in enumerate(key_columns, start=first))
    if kind == "delete":
        return f"DELETE FROM {name} WHERE {where}"
    sets = ", ".join(f"{quote_ident(c)} = ${i}" for i, c in enumerate(columns, start=1))
    return f"UPDATE {name} SET {sets} WHERE {where}"


def _nothing_to_write(tw: TableWrite) -> bool:
    """An update without values (or, under a composite key, with only the key's own values)."""
    write = tw.write
    return write.kind == "update" and (not write.values or len(tw.table.primary_key) > 1
                                       and set(write.values) <= set(tw.table.primary_key))


async def _write_one(conn: asyncpg.Connection, tw: TableWrite) -> None:
    if _nothing_to_write(tw):
        return
    sql, args, _ = _statement(tw)
    await conn.execute(sql, *args)


SET_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext", "int2", "int4", "int8", "numeric", "float4",
                       "float8", "bool", "date", "time", "timetz", "timestamp", "timestamptz", "uuid", "json",
                       "jsonb", "bytea"})
"""Column types written set-based (one statement per batch and shape, values as typed arrays). A column of any
other type (an enum, a composite) is written one statement per row."""


async def _write_bulk(conn: asyncpg.Connection, writes: list[TableWrite]) -> None:
    """Every write of one shape (table, kind, columns) as one statement over arrays: `UPDATE … FROM unnest(…)`,
    `INSERT … SELECT … FROM unnest(…)`, `DELETE … WHERE key = ANY(…)` — shapes in the order they first appear."""
    shapes: dict[str, tuple[TableWrite, tuple[str, ...], list[tuple[Any, ...]]]] = {}
    for tw in writes:
        if _nothing_to_write(tw):
            continue
        sql, args, columns = _statement(tw)
        shapes.setdefault(sql, (tw, columns, []))[2].append(args)
    for sql, (tw, columns, rows) in shapes.items():
        statement = _set_statement(tw, columns, rows)
        if statement is None:
            await conn.executemany(sql, rows)
        else:
            await conn.execute(statement, *([list(column) for column in zip(*rows, strict=True)]))


def _set_statement(tw: TableWrite, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str | None:
    """The set-based statement for these writes of one shape, or None when one statement per row must do: a single
    row, a record written twice, a column type without array parameters here."""
    if len(rows) < 2:
        return None
    table, kind = tw.table, tw.write.kind
    width = len(table.primary_key)
    if kind != "insert" and len({row[-1] if width == 1 else row[-width:] for row in rows}) < len(rows):
        return None
    types = tuple(table.columns[c].type_name for c in columns)
    if any(t not in SET_TYPES for t in types):
        return None
    if width > 1:
        return _composite_set_sql(table.schema, table.name, width, kind, columns, types)
    return _set_sql(table.schema, table.name, table.primary_key[0], kind, columns, types)


@functools.lru_cache(maxsize=1024)
def _set_sql(schema: str, table: str, key_column: str, kind: str, columns: tuple[str, ...],
             types: tuple[str, ...]) -> str:
    """`columns`: for an update the columns set, then the key; for an insert every column; for a delete the key."""
    name = qualified(schema, table)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    if kind == "delete":
        return f"DELETE FROM {name} WHERE {quote_ident(key_column)} = ANY($1::{types[0]}[])"
    if kind == "insert":
        return f"INSERT INTO {name} ({', '.join(quote_ident(c) for c in columns)}) SELECT * FROM unnest({arrays})"
    aliases = [f"v{i}" for i in range(len(columns))]
    sets = ", ".join(f"{quote_ident(c)} = u.{a}" for c, a in zip(columns[:-1], aliases, strict=False))
    return (f"UPDATE {name} AS t SET {sets} FROM unnest({arrays}) AS u({', '.join(aliases)}) "
            f"WHERE t.{quote_ident(key_column)} = u.{aliases[-1]}")


@functools.lru_cache(maxsize=1024)
def _composite_set_sql(schema: str, table: str, width: int, kind: str, columns: tuple[str, ...],
                       types: tuple[str, ...]) -> str:
    """`_set_sql` for a key of `width` columns, the last ones of `columns`: joined column by column with the
    arrays' rows."""
    if kind == "insert":
        return _set_sql(schema, table, columns[0], kind, columns, types)
    name = qualified(schema, table)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    aliases = [f"v{i}" for i in range(len(columns))]
    keys = zip(columns[-width:], aliases[-width:], strict=True)
    where = " AND ".join(f"t.{quote_ident(c)} = u.{a}" for c, a in keys)
    rows = f"unnest({arrays}) AS u({', '.join(aliases)})"
    if kind == "delete":
        return f"DELETE FROM {name} AS t USING {rows} WHERE {where}"
    sets = ", ".join(f"{quote_ident(c)} = u.{a}" for c, a in zip(columns[:-width], aliases, strict=False))
    return f"UPDATE {name} AS t SET {sets} FROM {rows} WHERE {where}"


@dataclass(frozen=True)
class Refusal:
    """Why the destination refused one record's writes."""

    message: str
    waits: bool = False
    """A delete refused because another record still refers to this one: it may succeed later (parked)."""


async def apply(conn: asyncpg.Connection, writes: list[TableWrite]) -> dict[int, Refusal]:
    """Write all `writes`; returns {ref: refusal} for the records that failed (the rest are committed).

    When the batch as a whole fails, each record is written in its own savepoint. Deletes refused because another
    record still refers to theirs are tried again after the others, while that makes progress: a child deleted
    in the same batch, or a reference moved away by an update of it, no longer holds them back."""
    if not writes:
        return {}
    by_ref: dict[int, list[TableWrite]] = defaultdict(list)
    for tw in writes:
        by_ref[tw.ref].append(tw)
    try:
        async with conn.transaction():
            await _write_bulk(conn, writes)
        return {}
    except (asyncpg.PostgresError, CoercionError):
        pass
    failures: dict[int, Refusal] = {}
    async with conn.transaction():
        pending = list(by_ref)
        while pending:
            refused: list[int] = []
            for ref in pending:
                record_writes = by_ref[ref]
                try:
                    async with conn.transaction():
                        for tw in record_writes:
                            await _write_one(conn, tw)
                    failures.pop(ref, None)
                except CoercionError as exc:
                    failures[ref] = Refusal(str(exc))
                except asyncpg.PostgresError as exc:
                    waits = isinstance(exc, asyncpg.ForeignKeyViolationError) and any(
                        tw.write.kind == "delete" for tw in record_writes)
                    failures[ref] = Refusal(_describe(exc, record_writes[0]), waits)
                    if waits:
                        refused.append(ref)
            pending = refused if 0 < len(refused) < len(pending) else []
    return failures


def _describe(exc: asyncpg.PostgresError, tw: TableWrite) -> str:
    if tw.write.kind == "delete" and isinstance(exc, asyncpg.ForeignKeyViolationError):
        return (f"deleting {tw.table.name} {tw.write.key!r} refused: another record still refers to it "
                f"({str(exc).splitlines()[0]}); retried until it can be deleted")
    if tw.write.kind == "insert" and isinstance(exc, asyncpg.UniqueViolationError):
        return (f"creating {tw.table.name} {tw.write.key!r} refused: a record with that key exists (a creation "
                f"never overwrites a record; it is decided again on its next change or cdc retry)")
    message = str(exc).splitlines()[0]
    detail = getattr(exc, "detail", None)
    return f"{tw.write.kind} into {tw.table.name} {tw.write.key!r} failed: {message}" + (
        f" ({detail})" if detail else "")
