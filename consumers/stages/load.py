"""The load stage: each change's record as its source holds it now (docs/exactly-once.md, "Events are notices")."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import asyncpg

from cdc.pair import System
from consumers import parking
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Change
from consumers.inflight import InFlight
from consumers.systems import SystemLink


async def load(state: asyncpg.Connection, links: dict[System, SystemLink], mapping_name: str, source: System,
               flights: list[InFlight]) -> list[InFlight]:
    """The group's changes to decide, each with its record re-read; the others are decided here: a change of a
    record with a parked change parks behind it, a record gone since its event is ignored (its delete is on the
    way), and so is a delete whose key exists again (the newer record wins).

    An event is a notice that a record changed: deciding on the record as it is now, a stale image can neither undo
    a write the sync made since (conflicts stay resolved) nor let a replay overwrite a newer change; what changed
    since is carried by the later events of the same record."""
    behind = await parking.behind(state, mapping_name, source, [f.item for f in flights])
    by_table: dict[tuple[System, str], list[InFlight]] = defaultdict(list)
    for f in flights:
        if f.key in behind and not f.item.parked_id:
            f.decision = Decision("parked", parking.BEHIND)
        else:
            by_table[(f.source, f.item.event.source.table)].append(f)
    live: list[InFlight] = []
    for (system, table), group in by_table.items():
        link = links[system]
        rows = await link.rows_by_key(table, sorted({f.key for f in group}))
        for f in group:
            row = rows.get(f.key)
            old = f.item.change
            if old.op == "d":
                if row is not None:
                    f.decision = Decision("ignored", "deleted, then created again: the newer record wins")
                else:
                    live.append(f)
                continue
            if row is None:
                f.decision = Decision("ignored", "record no longer exists (its delete is on the way)")
                continue
            # asyncpg returns typed Python values already: the row needs no coercion
            change = Change(old.source, old.op, old.key, row, old.position,
                            row.get(f.item.mapping.side(system).modified_on), old.replay)
            f.item = dataclasses.replace(f.item, change=change)
            live.append(f)
    live.sort(key=_position)
    return live


def _position(flight: InFlight) -> int:
    return flight.position
