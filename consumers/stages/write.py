"""The write stage: a group's writes into the ERP and the CRM (`consumers.appliers.writer`)."""

from __future__ import annotations

from collections import defaultdict

from cdc.pair import System
from consumers.appliers.writer import TableWrite, apply
from consumers.inflight import InFlight
from consumers.systems import SystemLink


async def write(links: dict[System, SystemLink], flights: list[InFlight]) -> None:
    """The group's writes, one transaction per system: the source system's first (the values a creation or a match
    writes back, a conflict's reverse writes), then the destination's. A crash between the two then leaves a
    creation unwritten (made again on its announced key) rather than written without its write-back, which
    recovery would take for complete (`consumers.recovery`). A record the destination refuses keeps the refusal
    (`InFlight.refusal`), and is not half-written into the second system."""
    per_system: dict[System, list[TableWrite]] = defaultdict(list)
    sources: set[System] = set()
    for n, f in enumerate(flights):
        mapping = f.mapping
        sources.add(f.source)
        for w in f.decision.writes:
            table = links[w.system].tables[mapping.side(w.system).table]
            per_system[w.system].append(TableWrite(table, w, n))
    failed: set[int] = set()
    for system, writes in sorted(per_system.items(), key=lambda sw: sw[0] not in sources):
        refusals = await apply(links[system].writer, [tw for tw in writes if tw.ref not in failed])
        failed.update(refusals)
        for n, refusal in refusals.items():
            flights[n].refusal = refusal
