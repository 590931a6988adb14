"""The sync engine: consumers read change events, decide per record what the mapping says, and apply it.

This package's public surface is `__all__` below: the application (`cdc.orchestrator`, `cdc.cli`, `cdc.monitoring`,
`cdc.supervisor`, `cdc.demo`) imports the engine only from here (`from consumers import Worker`), never from its
modules; `lint-imports` checks it (docs/architecture.md, "Layers"). Names load on first use, so importing one pure
decision does not pull in the worker's Kafka and database clients.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# name -> the module that is its one home
_HOMES: dict[str, str] = {
    # running the engine
    "Worker": "consumers.worker",
    "run_worker": "consumers.worker",
    "replay_failure": "consumers.parking",
    # what the engine reads before deciding (couplings, partner rows, lookups, match candidates)
    "load_situations": "consumers.situation",
    "resolve_lookups": "consumers.situation",
    "find_candidates": "consumers.situation",
    "lock_id": "consumers.locks",
    "lock_records": "consumers.locks",
    "SystemLink": "consumers.systems",
    # the pure decisions
    "Change": "consumers.decisions.record",
    "Shapes": "consumers.decisions.record",
    "Situation": "consumers.decisions.record",
    "decide": "consumers.decisions.record",
    "CouplingChange": "consumers.decisions.outcome",
    "Decision": "consumers.decisions.outcome",
    "LookupKey": "consumers.decisions.fields",
    "lookup_needs": "consumers.decisions.fields",
    "snapshot": "consumers.decisions.fields",
    "target_values": "consumers.decisions.fields",
    "typed_row": "consumers.decisions.fields",
    "candidate_keys": "consumers.decisions.keys",
    "MATCH_SEPARATOR": "consumers.decisions.matching",
    "match_key": "consumers.decisions.matching",
    "match_texts": "consumers.decisions.matching",
}

__all__ = [  # the public surface; each name's home is in _HOMES (a unit test keeps the two equal)
    "candidate_keys", "Change", "CouplingChange", "decide", "Decision", "find_candidates", "load_situations",
    "lock_id", "lock_records",
    "lookup_needs", "LookupKey", "MATCH_SEPARATOR", "match_key", "match_texts", "replay_failure", "resolve_lookups",
    "run_worker", "Shapes", "Situation", "snapshot", "SystemLink", "target_values", "typed_row", "Worker",
]

if TYPE_CHECKING:  # the same names, for type checkers and readers (and for lint-imports' graph)
    from consumers.decisions.fields import LookupKey, lookup_needs, snapshot, target_values, typed_row
    from consumers.decisions.keys import candidate_keys
    from consumers.decisions.matching import MATCH_SEPARATOR, match_key, match_texts
    from consumers.decisions.outcome import CouplingChange, Decision
    from consumers.decisions.record import Change, Shapes, Situation, decide
    from consumers.locks import lock_id, lock_records
    from consumers.parking import replay_failure
    from consumers.situation import find_candidates, load_situations, resolve_lookups
    from consumers.systems import SystemLink
    from consumers.worker import Worker, run_worker


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'consumers' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
