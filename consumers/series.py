"""Keys from the destination's own number series, allocated before the write (`new_key: {strategy: series}`).

A record created on a `series` side takes the next key its key column's default makes — a sequence
(`nextval(...)`), an expression around one (`'V' || lpad(nextval('vendor_no')::text, 6, '0')`), a function, or
an identity column's sequence. The default is evaluated on the destination (`SELECT <default>`) for the records
whose decision is a creation, before anything is announced or written; the decision then takes that key, and the
batch announces it with the creation (`cdc.state.intents`) before the write. A crash after the announcement makes
the replay create the record on the announced key — one record, that key (`consumers.recovery`); a crash before it
loses the number (a gap in the series, as a rolled-back insert leaves).

A creation only ever creates (docs/exactly-once.md): an allocated key some record already holds (typed in by
hand past the series, coupled, or announced) is taken, and another one is allocated, a few times at most.

The default expression is the destination's own (`pg_get_expr` of its catalog), the expression PostgreSQL would
evaluate for an insert that left the column out; nothing of the mapping file goes into that SQL.
"""

from __future__ import annotations

import dataclasses

import asyncpg
import structlog

from cdc.catalog import Table
from cdc.database import qualified
from cdc.mapping.model import TableMapping, other
from cdc.settings import System
from cdc.state import intents
from consumers.decisions.keys import ALTERNATIVES
from consumers.decisions.record import Change, Shapes, Situation, decide
from consumers.locks import lock_keys
from consumers.systems import SystemLink

log = structlog.get_logger()


async def allocate(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                   source: System, changes: list[Change], situations: list[Situation],
                   shapes: Shapes) -> list[Situation]:
    """The situations, with a key allocated (`Situation.allocated`) for each change whose decision creates a
    record on a `series` side; unchanged for every other mapping."""
    destination = other(source)
    side = mapping.side(destination)
    if side.new_key.strategy != "series" or not mapping.allows(source):
        return situations
    wanting = [n for n, (change, situation) in enumerate(zip(changes, situations, strict=True))
               if change.op != "d" and situation.coupling is None and situation.intent is None
               and _creates(mapping, change, situation, shapes)]
    if not wanting:
        return situations
    link = links[destination]
    table = link.tables[side.table]
    out = list(situations)
    pending = wanting
    tried: dict[int, list[str]] = {n: [] for n in wanting}
    for _ in range(ALTERNATIVES + 1):
        try:
            keys = await next_keys(link.writer, table, side.key, len(pending))
        except (asyncpg.PostgresError, ValueError) as exc:
            message = (f"no key from the number series of {destination} {table.name}.{side.key}: "
                       f"{str(exc).splitlines()[0]}")
            log.error("number series failed", mapping=mapping.name, error=message)
            for n in pending:
                out[n] = dataclasses.replace(out[n], allocation_failed=message)
            return out
        await lock_keys(state, mapping.name, destination, keys)
        taken = await intents.taken(state, mapping.name, destination, keys)
        taken |= await link.keys_present(side.table, keys)
        for n, key in zip(pending, keys, strict=True):
            tried[n].append(key)
        pending = [n for n, key in zip(pending, keys, strict=True) if key in taken]
        if not pending:
            break
        log.warning("number series gave keys records already hold: allocating again", mapping=mapping.name,
                    table=table.name, keys=sorted(taken)[:10])
    for n, keys_tried in tried.items():
        # a key still taken after the last attempt goes to the decision as taken: it fails, naming them
        taken_here = frozenset(keys_tried[:-1]) | (frozenset(keys_tried[-1:]) if n in pending else frozenset())
        out[n] = dataclasses.replace(out[n], allocated=keys_tried[-1],
                                     taken_keys=out[n].taken_keys | taken_here)
    return out


def _creates(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes) -> bool:
    try:
        return decide(mapping, change, situation, shapes).needs_key
    except ValueError:  # a value that cannot be carried: the decision proper reports it
        return False


async def next_keys(conn: asyncpg.Connection, table: Table, key: str, count: int) -> list[str]:
    """`count` keys from the default of `table.key`, in the order the series gives them (as text, the way
    couplings hold keys)."""
    column = table.columns[key]
    if column.default is not None:
        rows = await conn.fetch(f"SELECT ({column.default})::text AS key FROM generate_series(1, $1) AS n "
                                "ORDER BY n", count)
    elif column.identity:
        rows = await conn.fetch("SELECT nextval(pg_get_serial_sequence($2, $3))::text AS key "
                                "FROM generate_series(1, $1) AS n ORDER BY n", count,
                                qualified(table.schema, table.name), key)
    else:
        raise ValueError(f"column {key} has no default")
    keys = [row["key"] for row in rows]
    if any(k is None for k in keys):
        raise ValueError(f"the default of {key} made no value")
    return keys
