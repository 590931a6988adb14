"""Parked changes, the engine's side: when a change parks, when it is tried again, and when it is released.

The whole life of a parked change, in the order it happens (the SQL is in `cdc.state.parking`):
- **parking.** A live change whose lookup is not coupled yet decides "parked" (`consumers.decisions`), and so does a
  delete the destination refuses while another record still refers to the one to delete (`refused`). A later change
  of a record that has a parked change parks behind it (`behind`), so a record's changes apply in order.
- **not parking.** A change whose lookup its own sync never couples fails at once, saying why, instead of waiting
  for ever (`fail_never_coupled`, `never_coupled`): the looked-up record lies outside its mapping's direction (an ERP
  salesperson, while SALESPEOPLE carries CRM users to the ERP only) or outside that mapping's filter on its side (a
  contact's customer that is blocked). A replay never parks (`unpark_replays`): the orchestrator replays the
  mappings it looks up first, so waiting would not help.
- **recording.** The batch stores a new parked change, due after `park_delay(0)` (`park`), its parked error naming
  what it waits for (`record_parked_error`), and closes the parked error of a record no longer waiting
  (`close_parked_errors`); a record whose pair settled from the other side while failing is queued to be decided
  again at once (`recheck`, `recheck_now`).
- **retrying.** The worker's side loop takes the due changes, the oldest per record (`retry_due`), processes them
  like a batch, releases those that no longer park (or can no longer be used: `parked_item`) and reschedules the
  others by the `PARKED` schedule.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from cdc.backoff import Backoff
from cdc.mapping.filters import FilterValueError, describe, matches
from cdc.mapping.model import MappingFile, TableMapping
from cdc.pair import System, other
from cdc.state import job_errors
from cdc.state import parking as store
from consumers.appliers.writer import Refusal
from consumers.decisions.fields import LookupKey
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Change
from consumers.incoming import Echo, Incoming, Poison
from consumers.systems import SystemLink
from schemas.change_event import ChangeEvent, Decoded, notice

PARKED = Backoff(steps=(1, 2, 5, 10, 30, 60, 120, 300))
"""When a parked change is tried again: 1 s after it parked, then 2, 5, 10, 30, 60, 120 s, then every 5 min (by its
attempts, kept in the state database), each wait shortened by up to a fifth at random so that changes parked
together (the contacts of one uncoupled customer) do not all come due in the same batch again."""
BEHIND = "waiting behind an earlier parked change of this record"
"""A change parked because an older one of its record waits: that one's error says what for."""
DUE_AT_ONCE = 200
"""The most due parked changes one retry takes."""


def park_delay(attempts: int) -> timedelta:
    """The wait before a parked change's next try, after `attempts` tries (0: it has just parked)."""
    return timedelta(seconds=PARKED.delay(attempts))


def record(mapping_file: MappingFile, lookup: LookupKey) -> str:
    """The looked-up record in words: `ERP salesperson 'SL' (SALESPEOPLE)`."""
    mapping_name, system, key = lookup
    table = mapping_file.get(mapping_name).side(system).table
    return f"{system.upper()} {table} {key!r} ({mapping_name})"


def waiting_for(mapping_file: MappingFile, lookups: Iterable[LookupKey]) -> str:
    """A parked change's message: `waiting for ERP salesperson 'SL' (SALESPEOPLE) to be coupled`."""
    return "waiting for " + " and ".join(record(mapping_file, lookup) for lookup in lookups) + " to be coupled"


def never_coupled(lookup_mapping: TableMapping, system: System, key: str, row: Mapping[str, Any] | None) -> str | None:
    """Why the record `key` of `system` (looked up through `lookup_mapping`, not coupled) will not be coupled by its
    own sync, or None when it may be (it is in the mapping's direction and filter, or does not exist yet)."""
    side = lookup_mapping.side(system)
    if not lookup_mapping.allows(system):
        flow = f"{other(system).upper()} → {system.upper()}"
        return (f"{side.table} {key} is not coupled in {lookup_mapping.name}, which syncs {flow} only: create or "
                f"couple its {other(system).upper()} partner (cdc couple --mapping {lookup_mapping.name}), "
                "then cdc retry")
    if row is None:
        return None
    try:
        inside = matches(side.filter, row)
    except FilterValueError:
        return None
    if not inside:
        return (f"{side.table} {key} is outside {lookup_mapping.name}'s {system.upper()} filter "
                f"({describe(side.filter)}): it is never coupled, so this record cannot sync")
    return None


async def never_coupled_of(links: Mapping[System, SystemLink], mapping_file: MappingFile,
                           lookups: Iterable[LookupKey]) -> dict[LookupKey, str]:
    """`never_coupled` for each of `lookups`, reading the looked-up records (one query per table)."""
    wanted: dict[tuple[str, System], set[str]] = defaultdict(set)
    found: dict[LookupKey, str] = {}
    for mapping_name, system, key in set(lookups):
        lookup_mapping = mapping_file.get(mapping_name)
        if not lookup_mapping.allows(system):
            reason = never_coupled(lookup_mapping, system, key, None)
            assert reason is not None
            found[(mapping_name, system, key)] = reason
        else:
            wanted[(mapping_name, system)].add(key)
    for (mapping_name, system), keys in wanted.items():
        lookup_mapping = mapping_file.get(mapping_name)
        rows = await links[system].rows_by_key(lookup_mapping.side(system).table, sorted(keys))
        for key in keys:
            reason = never_coupled(lookup_mapping, system, key, rows.get(key))
            if reason is not None:
                found[(mapping_name, system, key)] = reason
    return found


# ------------------------------------------------------------------ deciding: park, or fail instead


async def behind(state: asyncpg.Connection, items: list[Incoming], mapping_name: str, source: System,
                 indexes: list[int]) -> dict[int, Decision]:
    """The changes among `indexes` whose record has a parked change: they park behind it (a retried parked change
    is that change itself, and is decided)."""
    fresh = [items[i].change.key for i in indexes if not items[i].parked_id]
    if not fresh:
        return {}
    waiting = await store.is_parked(state, mapping_name, source, fresh)
    return {i: Decision("parked", BEHIND) for i in indexes
            if not items[i].parked_id and items[i].change.key in waiting}


async def fail_never_coupled(links: Mapping[System, SystemLink], mapping_file: MappingFile, items: list[Incoming],
                             mapping_name: str, decided: dict[int, Decision]) -> None:
    """A change waiting for a lookup that its own sync will never couple (outside that mapping's direction or
    filter) fails at once, saying why, instead of being parked for ever."""
    waits = {w for d in decided.values() if d.verdict == "parked" for w in d.waiting}
    if not waits:
        return
    never = await never_coupled_of(links, mapping_file, waits)
    for i, decision in decided.items():
        reasons = [never[w] for w in decision.waiting if w in never]
        if decision.verdict == "parked" and reasons:
            decided[i] = record_failure(mapping_file, mapping_name, items[i].change, reasons, decision.waiting)


def unpark_replays(mapping_file: MappingFile, items: list[Incoming], mapping_name: str,
                   decided: dict[int, Decision]) -> None:
    """A replay is never parked: the orchestrator replays a mapping only after the mappings it looks up (and a
    hierarchy parents first), so a lookup still not coupled will not become coupled by waiting. The replay
    fails, with the reason on its job."""
    for i, decision in decided.items():
        if decision.verdict == "parked" and items[i].event.replay is not None:
            decided[i] = replay_failure(mapping_file, mapping_name, items[i].change, decision)


def refused(decision: Decision, refusal: Refusal) -> Decision:
    """The decision once the destination refused its writes. What did not happen keeps the coupling as it was: a
    refused delete keeps it (and waits, parked, while another record still refers to the one to delete), a refused
    creation or match records none, a refused update marks the coupling failed."""
    message = refusal.message
    if decision.verdict == "deleted":
        if refusal.waits:
            return Decision("parked", message, partner_key=decision.partner_key)
        return Decision("failed", message, counts={"failed": 1}, error=message, partner_key=decision.partner_key)
    coupling = decision.coupling
    if coupling is not None and not coupling.remove and decision.verdict not in ("coupled", "created", "restored"):
        coupling = dataclasses.replace(coupling, failure=message)
    else:
        coupling = None
    return Decision("failed", message, counts={"failed": 1}, coupling=coupling, error=message,
                    partner_key=decision.partner_key)


def replay_failure(mapping_file: MappingFile, mapping_name: str, change: Change, decision: Decision) -> Decision:
    """The failure of a replay that would have been parked, e.g. `CONTACTS: contact CT0005: customer C0009 is not
    coupled in CUSTOMER (outside its filter, or not synced)`."""
    reasons = [f"{mapping_file.get(lookup).side(system).table} {key} is not coupled in {lookup} "
               "(outside its filter, or not synced)" for lookup, system, key in decision.waiting]
    if not decision.waiting:
        reasons.append("an earlier change of this record is parked (cdc errors); it syncs when that one is retried"
                       if decision.reason == BEHIND else decision.reason)
    return record_failure(mapping_file, mapping_name, change, reasons, decision.waiting)


def record_failure(mapping_file: MappingFile, mapping_name: str, change: Change, reasons: list[str],
                   waiting: tuple[LookupKey, ...] = ()) -> Decision:
    """A record that cannot sync, for these reasons: `MAPPING: table key: reason; reason`. `waiting`: the lookups it
    cannot sync without (its error names them, and it is tried again when one is coupled)."""
    mapping = mapping_file.get(mapping_name)
    message = f"{mapping.name}: {mapping.side(change.source).table} {change.key}: " + "; ".join(
        dict.fromkeys(reasons))
    return Decision("failed", message, counts={"failed": 1}, error=message, waiting=waiting)


# ------------------------------------------------------------------ recording, in the batch's transaction


async def park(state: asyncpg.Connection, item: Incoming, decision: Decision) -> None:
    """Keep a change that parked now (not a parked change retried: that one is rescheduled), due after its first
    wait."""
    if decision.verdict == "parked" and not item.parked_id:
        await store.park(state, item.mapping.name, item.source, item.change.key, item.raw, decision.reason,
                         park_delay(0))


async def record_parked_error(state: asyncpg.Connection, mapping_file: MappingFile, job_id: UUID | None,
                              item: Incoming, decision: Decision) -> None:
    """A parked change's error, naming what it waits for: one per record (the changes parked behind it add none)."""
    if decision.reason == BEHIND:
        return
    message = waiting_for(mapping_file, decision.waiting) if decision.waiting else decision.reason
    await job_errors.record_error(state, job_id, item.mapping.name, item.source, item.change.key,
                                  other(item.source), decision.partner_key, message,
                                  detail=decision.reason, event=item.raw, state="parked")


async def close_parked_errors(state: asyncpg.Connection, unparked: Mapping[tuple[str, System], list[str]]) -> None:
    """The parked errors of records no longer waiting close."""
    for (mapping_name, system), keys in unparked.items():
        await job_errors.close(state, mapping_name, system, keys, ("parked",))


def recheck(mapping: TableMapping, system: System, key: str) -> store.Parked:
    """A notice to decide `key` again, due now: its pair was settled from the other side while it was failing."""
    side = mapping.side(system)
    return store.Parked(mapping.name, system, key,
                        notice(system, side.schema_, side.table, side.key_columns, key, "recheck"),
                        "its partner synced after a failure: decided again")


async def recheck_now(state: asyncpg.Connection, rechecks: list[store.Parked]) -> None:
    await store.park_many(state, rechecks, timedelta(0))


# ------------------------------------------------------------------ retrying and releasing (the worker's side loop)

Interpret = Callable[[Decoded, System], "list[tuple[TableMapping, Change]] | Poison | Echo"]
"""How the worker reads an event of a system: the change for each mapping reading its table, poison, or an echo."""
Process = Callable[[list[Incoming]], Awaitable[list[tuple[Incoming, Decision]]]]


def parked_item(p: store.ParkedEvent, mapping_file: MappingFile, interpret: Interpret) -> Incoming | str:
    """The parked change ready to process again, or why it cannot be."""
    try:
        event = ChangeEvent.model_validate(p.event)
    except ValueError as exc:
        return f"not a change event: {str(exc).splitlines()[0]}"
    if p.mapping not in {m.name for m in mapping_file.mappings}:
        return f"mapping {p.mapping} is no longer in the mapping file"
    found = interpret(Decoded(event, p.event), p.system)
    if isinstance(found, Poison):
        return found.reason
    if isinstance(found, Echo):
        return "the sync's own write"
    for mapping, change in found:
        if mapping.name == p.mapping:
            return Incoming(event, p.event, mapping, change, parked_id=p.id, keep=p.keep)
    return f"{p.system} table {event.source.table} is not read by mapping {p.mapping}"


async def retry_due(conn: asyncpg.Connection, state: asyncpg.Connection,
                    item_of: Callable[[store.ParkedEvent], Incoming | str], process: Process) -> int:
    """Retry due parked events, the oldest per record only (keeps per-record order): those decided otherwise than
    parked, and those that cannot be used any more (an open error says why), are released; the others wait for
    their next try. `conn` reads what is due, `state` records; returns how many were processed."""
    due = await store.due(conn, datetime.now(UTC), DUE_AT_ONCE)
    if not due:
        return 0
    first: dict[tuple[str, str, str], store.ParkedEvent] = {}
    for p in due:
        first.setdefault((p.mapping, p.system, p.key), p)
    items: list[Incoming] = []
    dropped: list[int] = []
    for p in first.values():
        incoming = item_of(p)
        if isinstance(incoming, str):
            dropped.append(p.id)
            await job_errors.close(state, p.mapping, p.system, [p.key], ("parked",))
            await job_errors.record_error(state, None, p.mapping, p.system, p.key, None, None,
                                          f"parked change cannot be used any more: {incoming}",
                                          detail=p.reason, event=p.event)
        else:
            items.append(incoming)
    results = await process(items)
    done = [item.parked_id for item, decision in results
            if decision.verdict != "parked" and item.parked_id is not None]
    again = [(item, decision) for item, decision in results if decision.verdict == "parked"]
    by_id = {p.id: p for p in first.values()}
    async with state.transaction():
        await store.release(state, done + dropped)
        for item, decision in again:
            p = by_id[item.parked_id]  # type: ignore[index]
            await store.reschedule(state, p.id, p.attempts + 1, datetime.now(UTC) + park_delay(p.attempts + 1),
                                   decision.reason)
    return len(results)
