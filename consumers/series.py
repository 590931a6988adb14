"""Keys from the destination's own number series, allocated before the write (`new_key: {strategy: series}`).

A record created on a `series` side takes the next key its key column's default makes — a sequence
(`nextval(...)`), an expression around one (`'V' || lpad(nextval('vendor_no')::text, 6, '0')`), a function, or
an identity column's sequence. The default is evaluated on the destination (`SELECT <default>`) for the records
whose decision is a creation, before anything is announced or written; the decision then takes that key, and the
batch announces it with the creation (`cdc.state.intents`) before the write. A crash after the announcement makes
the replay create the record on the announced key — one record, that key (`consumers.recovery`); a crash before it
loses the number (a gap in the series, as a rolled-back insert leaves).

A composite key (`strategy: columns`) whose columns no field and no `defaults` entry fill — a sales line's
`line_no` next to the `document_no` it carries — has those columns drawn the same way: each one's default, the
record's key then the one the decision makes of them and the carried columns, checked, announced and reused alike.

A creation only ever creates (docs/exactly-once.md): an allocated key some record already holds (typed in by
hand past the series, coupled, or announced) is taken, and another one is allocated, a few times at most.

The default expression is the destination's own (`pg_get_expr` of its catalog), the expression PostgreSQL would
evaluate for an insert that left the column out; nothing of the mapping file goes into that SQL.
"""

from __future__ import annotations

import dataclasses

import asyncpg
import structlog

from cdc import table_gateway
from cdc.catalog import Table
from cdc.mapping.model import TableMapping
from cdc.pair import System, other
from cdc.state import intents
from consumers.decisions.keys import ALTERNATIVES
from consumers.decisions.record import Change, Shapes, Situation, decide
from consumers.locks import lock_keys
from consumers.systems import SystemLink
from schemas.key_text import encode as encode_key

log = structlog.get_logger()


async def allocate(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                   source: System, changes: list[Change], situations: list[Situation],
                   shapes: Shapes) -> list[Situation]:
    """The situations, with the drawn key columns' values allocated (`Situation.allocated`) for each change whose
    decision creates a record on a side whose key (`series`) or some of whose key columns (`columns`) come from
    their column defaults (`TableMapping.drawn_key_columns`); unchanged for every other mapping."""
    destination = other(source)
    side = mapping.side(destination)
    drawn = mapping.drawn_key_columns(destination)
    if not drawn or not mapping.allows(source):
        return situations
    wanting = [n for n, (change, situation) in enumerate(zip(changes, situations, strict=True))
               if change.op != "d" and situation.coupling is None and situation.intent is None
               and _creates(mapping, change, situation, shapes)]
    if not wanting:
        return situations
    link = links[destination]
    table = link.tables[side.table]
    pending = wanting
    allocated: dict[int, str] = {}
    taken_for: dict[int, frozenset[str]] = {n: frozenset() for n in wanting}
    failed: str | None = None
    for _ in range(ALTERNATIVES + 1):
        try:
            columns = [await next_keys(link.writer, table, column, len(pending)) for column in drawn]
        except (asyncpg.PostgresError, ValueError) as exc:
            failed = (f"no key from the number series of {destination} {table.name}.{'/'.join(drawn)}: "
                      f"{str(exc).splitlines()[0]}")
            log.error("number series failed", mapping=mapping.name, error=failed)
            break
        allocated.update(zip(pending, (encode_key(parts) for parts in zip(*columns, strict=True)), strict=True))
        keys = [_key(mapping, changes[n], situations[n], shapes, allocated[n]) for n in pending]
        known = [k for k in keys if k is not None]
        await lock_keys(state, mapping.name, destination, known)
        taken = await intents.taken(state, mapping.name, destination, known)
        taken |= await link.keys_present(side.table, known)
        # a key still taken after the last attempt goes to the decision as taken: it fails, naming them
        taken_for.update((n, taken_for[n] | {key}) for n, key in zip(pending, keys, strict=True) if key in taken)
        pending = [n for n, key in zip(pending, keys, strict=True) if key in taken]
        if not pending:
            break
        log.warning("number series gave keys records already hold: allocating again", mapping=mapping.name,
                    table=table.name, keys=sorted(taken)[:10])
    out = list(situations)
    for n in wanting:
        if failed is not None and n in pending:
            out[n] = dataclasses.replace(out[n], allocation_failed=failed)
        else:
            out[n] = dataclasses.replace(out[n], allocated=allocated[n], taken_keys=out[n].taken_keys | taken_for[n])
    return out


def _key(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes, allocated: str) -> str | None:
    """The key of the record created with these drawn values: the allocated key itself under `series`; under
    `columns`, what the decision makes of them with the other key columns (None: it makes none, and says why)."""
    if not mapping.side(other(change.source)).composite:
        return allocated
    drawn = dataclasses.replace(situation, allocated=allocated, taken_keys=frozenset())  # taken: checked here
    return decide(mapping, change, drawn, shapes).partner_key


def _creates(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes) -> bool:
    try:
        return decide(mapping, change, situation, shapes).needs_key
    except ValueError:  # a value that cannot be carried: the decision proper reports it
        return False


async def next_keys(conn: asyncpg.Connection, table: Table, key: str, count: int) -> list[str]:
    """`count` values from the default of the key column `key`, in the order the series gives them (as text, the
    way couplings hold keys)."""
    sql, args = table_gateway.draw(table, table.columns[key])
    rows = await conn.fetch(sql, count, *args)
    keys = [row["key"] for row in rows]
    if any(k is None for k in keys):
        raise ValueError(f"the default of {key} made no value")
    return keys
