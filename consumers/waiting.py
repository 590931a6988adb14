"""Changes waiting for a lookup: what they wait for, and which waits can never end.

A live change whose lookup is not coupled yet is parked until the looked-up record is coupled by its own sync. That
sync never comes when the looked-up record lies outside its mapping's direction (an ERP salesperson, while
SALESPEOPLE carries CRM users to the ERP only) or outside that mapping's filter on its side (a contact's customer
that is blocked): such a change is an open error at once, saying why, instead of a change parked for ever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from cdc.mapping.filters import FilterValueError, describe, matches
from cdc.mapping.model import MappingFile, TableMapping, other
from cdc.settings import System
from consumers.decisions.fields import LookupKey
from consumers.systems import SystemLink


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
