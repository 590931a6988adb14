"""Recognising the sync's own writes when they come back as changes.

Capture drops the transactions the appliers commit (they carry a replication origin), and so does the worker for a
Debezium connector that reports origins (`source.origin`, Debezium 3.5 and later with pgoutput). A producer that
reports none — an older Debezium, another plugin — publishes them like any change. The coupling tells them apart:
its fingerprint records what each side held after the last sync, so a source record whose every mapped column
still holds its fingerprint has not changed since the sync wrote (or read) it. Nothing flows, and it is not a user
change to count.
"""

from __future__ import annotations

from cdc.mapping.model import TableMapping
from cdc.pair import Pair
from consumers.decisions.fields import snapshot
from consumers.decisions.record import Change, CouplingLike

REASON = "the record holds what the last sync recorded (the sync's own write read back): nothing to do"


def is_echo(mapping: TableMapping, change: Change, coupling: CouplingLike | None) -> bool:
    """True when `change`'s record (as re-read) equals the coupling's fingerprint of it on every mapped column."""
    if coupling is None or change.op == "d":
        return False
    recorded = Pair(coupling.erp_values, coupling.crm_values)[change.source]
    columns = mapping.mapped_columns(change.source)
    if not recorded or not columns or any(c not in recorded or c not in change.row for c in columns):
        return False
    return snapshot(change.row, columns) == {c: recorded[c] for c in columns}
