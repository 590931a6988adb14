"""The situate and decide stages: each record's situation, then its decision (pure, `consumers.decisions`)."""

from __future__ import annotations

import dataclasses

import asyncpg

from cdc.mapping.model import TableMapping
from cdc.mapping.transforms import TransformError, ValueMappingError
from cdc.pair import System
from cdc.values import CoercionError
from consumers import series
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Change, Shapes, decide
from consumers.inflight import InFlight
from consumers.recovery import Recovered
from consumers.situation import Locked, load_situations
from consumers.systems import SystemLink


async def situate(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                  source: System, flights: list[InFlight], changes: list[Change], create_flags: dict[int, bool],
                  locked: Locked, recovered: Recovered, shapes: Shapes) -> None:
    """Each record's situation (`changes` are the flights' own, `create_flags` their `sync_only_coupled`, by
    position in `flights`): as loaded, with an operator's resolution of a conflict (cdc resolve), and for a creation
    on a side numbered by its own series the key allocated before anything is announced or written."""
    situations = await load_situations(state, links, mapping, source, changes, sync_only_coupled=create_flags,
                                       locked=locked, recovered=recovered)
    for n, f in enumerate(flights):
        if f.item.keep is not None:
            situations[n] = dataclasses.replace(situations[n], keep=f.item.keep, retry=True)
    situations = await series.allocate(state, links, mapping, source, changes, situations, shapes)
    for f, situation in zip(flights, situations, strict=True):
        f.situation = situation


def decide_each(mapping: TableMapping, flights: list[InFlight], shapes: Shapes) -> None:
    """Each record's decision; a value that cannot be carried fails its record, not the batch."""
    for f in flights:
        try:
            f.decision = decide(mapping, f.change, f.situation, shapes)
        except (CoercionError, TransformError, ValueMappingError) as exc:
            f.decision = Decision("failed", str(exc), counts={"failed": 1}, error=str(exc))
