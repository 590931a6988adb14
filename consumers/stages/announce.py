"""The announce stage: a group's writes made known before they are made (docs/exactly-once.md, "Interrupted writes")."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal
from uuid import UUID

import asyncpg

from cdc.pair import System
from cdc.state import intents, update_intents
from cdc.state.intents import Intent
from cdc.state.update_intents import UpdateIntent
from consumers.decisions.outcome import Decision
from consumers.incoming import Incoming
from consumers.inflight import InFlight
from consumers.recovery import Recovery

KINDS: dict[str, Literal["create", "match"]] = {"created": "create", "coupled": "match"}
"""The verdicts announced record by record, as the kind of their intent."""


async def announce(state: asyncpg.Connection, announcer: asyncpg.Connection, mapping_name: str, source: System,
                   flights: list[InFlight], recovery: Recovery) -> None:
    """A creation or a match per record (`cdc.state.intents`), and the updates of coupled records as one row
    (`cdc.state.update_intents`), which this batch's transaction holds until it commits; both committed on
    `announcer`, outside that transaction, so they are durable before the writes."""
    couplings: list[Intent] = []
    updates: list[UpdateIntent] = []
    for f in flights:
        d = f.decision
        if d.writes and d.coupling is not None and not d.coupling.remove and d.partner_key is not None:
            if d.verdict in KINDS:
                couplings.append(_intent(f.item, d))
            else:
                updates.append(_update_intent(f.item, d))
    await intents.announce(announcer, mapping_name, source, couplings)
    for intent in couplings:
        recovery.handled(intent)
    if updates:
        await update_intents.hold(state, await update_intents.announce(announcer, mapping_name, source, updates))


def _written(decision: Decision) -> dict[str, dict[str, Any]]:
    writes: dict[str, dict[str, Any]] = defaultdict(dict)
    for w in decision.writes:
        if w.kind != "delete":
            writes[w.system].update(w.values)
    return dict(writes)


def _intent(item: Incoming, decision: Decision) -> Intent:
    """The announcement of a creation or a match: the coupling it will record, the values it writes (and for a
    creation, the new record's key)."""
    c = decision.coupling
    assert c is not None and decision.partner_key is not None
    replay = item.event.replay
    return Intent(item.mapping.name, item.source, item.change.key, decision.partner_key, KINDS[decision.verdict],
                  c.erp_values, c.crm_values, c.erp_modified_on, c.crm_modified_on, c.erp_position, c.crm_position,
                  _written(decision), UUID(replay.job_id) if replay is not None else None)


def _update_intent(item: Incoming, decision: Decision) -> UpdateIntent:
    """The announcement of writes into a coupled pair: the values, and the fingerprints of the fields they write
    (what the batch's record stage will store about them)."""
    c = decision.coupling
    assert c is not None
    writes = _written(decision)
    touched = [f for system, values in writes.items() for column in values
               for f in item.mapping.fields_writing(system).get(column, ())]  # type: ignore[arg-type]
    erp_values = {column: c.erp_values[column] for f in touched for column in f.columns("erp")
                  if column in c.erp_values}
    crm_values = {column: c.crm_values[column] for f in touched for column in f.columns("crm")
                  if column in c.crm_values}
    return UpdateIntent(c.erp_key, c.crm_key, writes, erp_values, crm_values, c.erp_modified_on, c.crm_modified_on,
                        c.erp_position, c.crm_position)
