"""Writing decided rows into one system table, idempotently.

An insert only ever creates: it never lands on an existing row (a record that already holds the key fails with a
clear error instead of being overwritten; docs/exactly-once.md, "a creation only ever creates"). Updates set only
the decided columns, deletes are by key. A batch is written in one transaction; when it fails, each
record is retried in its own savepoint so one bad record fails alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from cdc import table_gateway
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
        return table_gateway.delete(table), (key,), (key_column,)
    values = _typed(table, write.values)
    if write.kind == "insert":
        values[key_column] = key
        columns = tuple(values)
        return table_gateway.insert(table, columns), tuple(values.values()), columns
    columns = tuple(values)
    return table_gateway.update(table, columns), (*values.values(), key), (*columns, key_column)


def _composite_statement(tw: TableWrite) -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    """`_statement` for a key of several columns: the key's columns (from the key text) come last, in the primary
    key's order, for a delete or an update; an insert writes them among its columns."""
    table, write = tw.table, tw.write
    names = tuple(table.primary_key)
    key = key_values(write.key, names, [table.columns[c].type_name for c in names])
    if write.kind == "delete":
        return table_gateway.delete(table), tuple(key.values()), names
    values = _typed(table, write.values)
    if write.kind == "insert":
        values.update(key)
        columns = tuple(values)
        return table_gateway.insert(table, columns), tuple(values.values()), columns
    columns = tuple(c for c in values if c not in key)
    return (table_gateway.update(table, columns), (*(values[c] for c in columns), *key.values()),
            (*columns, *names))


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
    row, a record written twice, a column type without array parameters (`cdc.table_gateway.SET_TYPES`).
    `columns`: for an update the columns set, then the key's; for an insert every column; for a delete the key's."""
    if len(rows) < 2:
        return None
    table, kind = tw.table, tw.write.kind
    width = len(table.primary_key)
    if kind != "insert" and len({row[-1] if width == 1 else row[-width:] for row in rows}) < len(rows):
        return None
    if kind == "insert":
        return table_gateway.insert_set(table, columns)
    if kind == "delete":
        return table_gateway.delete_set(table)
    return table_gateway.update_set(table, columns[:-width])


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
