"""The settle stage: every way a decision changes after `decide`, in the order the batch applies them.

`decide` (`consumers.decisions`) sees one record and its situation. What it cannot see is settled here, and nowhere
else is a decision replaced:

after deciding (`settle`), before anything is announced:
- a pair that was failing (or skipped) and syncs now: its partner is decided again (`recheck_partner`), since its
  own change may have been consumed by the failure;
- a record whose creation the recover stage restored, found unchanged: counted once, as inserted when the restore
  is counted (`consumers.stages.record.count_restored`), not also as unchanged; its partner is decided again, since
  a change made to it while the coupling was missing was passed over then;
- an echo of the sync's own write found unchanged: not counted (not a user's change);
- a change waiting for a lookup its own sync never couples: failed at once, saying why, instead of parked for ever
  (`consumers.parking.never_coupled`);

after writing (`settle_refusals`): a record whose writes the destination refused fails, keeping its coupling as it
was; a refused delete another record still refers to parks (`consumers.parking.refused`);

before recording (`settle_replays`): a replay that would park fails instead (`consumers.parking.replay_failure`).
"""

from __future__ import annotations

import dataclasses

from cdc.mapping.model import MappingFile, TableMapping
from cdc.pair import System
from consumers import parking
from consumers.decisions import echo
from consumers.inflight import InFlight
from consumers.recovery import Recovery
from consumers.systems import SystemLink

RESTORED = "coupling restored after an interruption; nothing to write"


async def settle(links: dict[System, SystemLink], mapping_file: MappingFile, mapping: TableMapping, source: System,
                 flights: list[InFlight], recovery: Recovery) -> None:
    """The group's decisions, settled before anything is announced; an intent a decision takes over (a creation on
    its announced key, a match with its announced partner) is forgotten when the batch commits."""
    for f in flights:
        decision, situation = f.decision, f.situation
        stored = situation.coupling
        if decision.verdict in ("applied", "unchanged") and stored is not None and (
                stored.skipped or getattr(stored, "failure_count", 0) > 0):
            decision = dataclasses.replace(decision, recheck_partner=True)
        if situation.intent is not None and decision.coupling is not None:
            recovery.forget.add((mapping.name, source, f.key))
        if decision.verdict == "unchanged":
            if recovery.restored_source(mapping.name, source, f.key):
                decision = dataclasses.replace(decision, counts={}, recheck_partner=True, reason=RESTORED)
            elif f.item.event.replay is None and echo.is_echo(mapping, f.change, stored):
                decision = dataclasses.replace(decision, counts={}, reason=echo.REASON)
        f.decision = decision
    await _fail_never_coupled(links, mapping_file, mapping.name, flights)


async def _fail_never_coupled(links: dict[System, SystemLink], mapping_file: MappingFile, mapping_name: str,
                              flights: list[InFlight]) -> None:
    waits = {w for f in flights if f.decision.verdict == "parked" for w in f.decision.waiting}
    if not waits:
        return
    never = await parking.never_coupled_of(links, mapping_file, waits)
    for f in flights:
        reasons = [never[w] for w in f.decision.waiting if w in never]
        if f.decision.verdict == "parked" and reasons:
            f.decision = parking.record_failure(mapping_file, mapping_name, f.change, reasons, f.decision.waiting)


def settle_refusals(flights: list[InFlight]) -> None:
    """The decisions of records whose writes the destination refused (`consumers.stages.write`)."""
    for f in flights:
        if f.refusal is not None:
            f.decision = parking.refused(f.decision, f.refusal)
            f.refusal = None


def settle_replays(mapping_file: MappingFile, mapping_name: str, flights: list[InFlight]) -> None:
    """A replay is never parked: the orchestrator replays a mapping only after the mappings it looks up (and a
    hierarchy parents first), so a lookup still not coupled will not become coupled by waiting. The replay fails,
    with the reason on its job."""
    for f in flights:
        if f.decision.verdict == "parked" and f.item.event.replay is not None:
            f.decision = parking.replay_failure(mapping_file, mapping_name, f.change, f.decision)
