"""Loading, in bulk, everything a batch of decisions needs: couplings, partner rows, lookups, match candidates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from cdc import table_gateway
from cdc.mapping.filters import matches
from cdc.mapping.model import TableMapping
from cdc.pair import Pair, System, other
from cdc.state import couplings as coupling_store
from cdc.state import intents
from cdc.values import CoercionError, key_text
from consumers.decisions.fields import LookupKey, lookup_needs, target_values
from consumers.decisions.keys import candidate_keys, columns_key
from consumers.decisions.matching import looked_up_as_text, match_key, match_values
from consumers.decisions.record import Change, Situation
from consumers.locks import lock_id, lock_records
from consumers.recovery import Recovery, recover_interrupted
from consumers.systems import SystemLink


async def load_situations(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                          source: System, changes: list[Change], *, sync_only_coupled: dict[int, bool],
                          recovery: Recovery | None = None,
                          recover_updates: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                          ) -> list[Situation]:
    """One Situation per change (same order). `sync_only_coupled` is per change index.

    Locks first (the records, and the keys a creation may take, so a worker deciding about a record another one
    is creating waits for that coupling), then reads. With `recovery`, creations a crash left uncoupled are
    coupled again from their intents before anything is decided (`consumers.recovery`).
    """
    destination = other(source)
    keys = [c.key for c in changes]
    dest_link = links[destination]
    dest_table = mapping.side(destination).table
    dest_shape = dest_link.tables[dest_table]
    key_column = dest_shape.columns[dest_shape.primary_key[0]]

    def own_keys_of(change: Change, alternatives: bool = False) -> list[str]:
        return candidate_keys(mapping, mapping.side(destination), key_column.type_name, key_column.max_length,
                              change.key, change.row, alternatives=alternatives)

    may_create = [i for i, c in enumerate(changes)
                  if c.op != "d" and not sync_only_coupled[i] and mapping.allows(source)]
    # a coupled pair is locked by its ERP key: an ERP record's own key already (its partner is needed only to know
    # whether it may be created); a CRM record's partner must be looked up
    paired = await coupling_store.partners_by_keys(
        state, mapping.name, source, keys if source == "crm" else [changes[i].key for i in may_create])
    own_keys = {i: own_keys_of(changes[i]) for i in may_create if changes[i].key not in paired}
    locks = {lock_id(mapping.name, "erp", Pair.oriented(source, key, partner).erp) for key, partner in paired.items()}
    locks |= {lock_id(mapping.name, source, c.key) for c in changes if c.key not in paired}
    locks |= {lock_id(mapping.name, destination, k) for ks in own_keys.values() for k in ks}
    await lock_records(state, locks)
    if recover_updates is not None:
        # after the locks: a batch that died holding one of these records has ended by now (its locks are ours), so
        # its announced updates are free to recover — before the locks, they may still be held by its backend
        await recover_updates(state)
    found = await coupling_store.fetch_by_keys(state, mapping.name, source, keys)
    reusable: dict[str, str] = {}
    rematch: dict[str, str] = {}
    if recovery is not None:
        recovered = await recover_interrupted(state, links, mapping, source,
                                              [c for c in changes if c.key not in found], recovery)
        found.update(recovered.couplings)
        reusable = recovered.reusable
        rematch = recovered.rematch

    partner_keys = sorted({cp.key(destination) for cp in found.values()})
    partners = await dest_link.rows_by_key(dest_table, partner_keys)

    needs: set[LookupKey] = set()
    for c in changes:
        needs.update(lookup_needs(mapping, source, c.row))
        cp = found.get(c.key)
        if cp is not None and cp.key(destination) in partners:
            needs.update(lookup_needs(mapping, destination, partners[cp.key(destination)]))
    lookups = await resolve_lookups(state, needs)

    creating = [i for i in may_create if changes[i].key not in found]
    for i in creating:
        if i not in own_keys:
            own_keys[i] = own_keys_of(changes[i])
    if mapping.side(destination).new_key.strategy == "columns":
        # the key is what the creation writes into the key columns, its lookups resolved: known only now
        for i in creating:
            own_keys[i] = _columns_keys(mapping, changes[i], dest_shape, lookups)
        await lock_records(state, {lock_id(mapping.name, destination, k) for i in creating for k in own_keys[i]})
    all_own = sorted({k for i in creating for k in own_keys[i]})
    # a creation only ever creates: a key held by any record (coupled, announced, or merely there) is taken; the
    # record holding it is a match candidate below when the mapping's match rules say so. The key a creation
    # announced but never wrote is still its own.
    taken = await _taken(state, dest_link, mapping.name, destination, dest_table, all_own)
    taken -= set(reusable.values())
    # the strategy's own keys all taken (rare): the derived alternatives, locked and checked in turn
    blocked = [i for i in creating if all(k in taken for k in own_keys[i])]
    if blocked:
        for i in blocked:
            own_keys[i] = own_keys_of(changes[i], alternatives=True)
        more = sorted({k for i in blocked for k in own_keys[i]} - set(all_own))
        await lock_records(state, {lock_id(mapping.name, destination, k) for k in more})
        taken |= await _taken(state, dest_link, mapping.name, destination, dest_table, more)

    candidates: dict[int, tuple[tuple[dict[str, Any], ...], ...]] = {}
    if mapping.match_on and creating:
        candidates = await find_candidates(state, dest_link, mapping, source, changes, creating, own_keys,
                                           rematch={i: rematch[changes[i].key] for i in creating
                                                    if changes[i].key in rematch})
        # a match writes the candidate's values too (after_match, fields flowing only its way): its lookups
        candidate_needs = {need for groups in candidates.values() for group in groups for row in group
                           for need in lookup_needs(mapping, destination, row)} - lookups.keys()
        if candidate_needs:
            lookups.update(await resolve_lookups(state, candidate_needs))

    situations = []
    for i, c in enumerate(changes):
        cp = found.get(c.key)
        partner = partners.get(cp.key(destination)) if cp is not None else None
        situations.append(Situation(coupling=cp, partner=partner, candidates=candidates.get(i, ()),
                                    lookups=lookups, sync_only_coupled=sync_only_coupled[i],
                                    taken_keys=frozenset(taken), intent=reusable.get(c.key)))
    return situations


def _columns_keys(mapping: TableMapping, change: Change, dest_shape: Any,
                  lookups: dict[LookupKey, str]) -> list[str]:
    """The key a creation takes under strategy `columns` (none when its values make no key: decided as failed)."""
    destination = other(change.source)
    try:
        target, _ = target_values(mapping, change.source, change.row, dest_shape, lookups)
    except CoercionError:
        return []
    side = mapping.side(destination)
    key = columns_key(side, {**side.defaults, **target}, dest_shape)
    return [] if key is None else [key]


async def _taken(state: asyncpg.Connection, dest: SystemLink, mapping: str, destination: System, table: str,
                 keys: list[str]) -> set[str]:
    """Which of `keys` a record holds: coupled, announced as being created, or merely there in the table."""
    if not keys:
        return set()
    return await intents.taken(state, mapping, destination, keys) | await dest.keys_present(table, keys)


async def resolve_lookups(state: asyncpg.Connection, needs: set[LookupKey]) -> dict[LookupKey, str]:
    """The coupled partner of each lookup's key, every mapping looked up in one statement."""
    return await coupling_store.partners_of(state, needs)


async def find_candidates(state: asyncpg.Connection, dest: SystemLink, mapping: TableMapping, source: System,
                          changes: list[Change], indexes: list[int], own_keys: dict[int, list[str]],
                          rematch: dict[int, str] | None = None
                          ) -> dict[int, tuple[tuple[dict[str, Any], ...], ...]]:
    """Per change, per match priority: the uncoupled, in-filter destination records whose match fields agree.

    Records coupled, or announced as being created (`cdc.state.intents`), are not candidates: a record another
    worker has just created is its source's partner, not a match for this one."""
    destination = other(source)
    side = mapping.side(destination)
    shape = dest.tables[side.table]
    key_columns = shape.primary_key
    priorities = sorted({m.priority for m in mapping.match_on})
    result: dict[int, list[tuple[dict[str, Any], ...]]] = {i: [] for i in indexes}
    for priority in priorities:
        group = [m for m in mapping.match_on if m.priority == priority]
        types = [shape.columns[m.column(destination)].type_name for m in group]
        wanted: list[tuple[int, tuple[Any, ...]]] = []
        for i in indexes:
            values = match_values(group, source, changes[i].row, types)
            if values is not None:
                wanted.append((i, values))
        matched: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if wanted:
            compared = [(m.column(destination), m.case_sensitive, looked_up_as_text(t))
                        for m, t in zip(group, types, strict=True)]
            sql = table_gateway.match_candidates(shape, compared)
            columns = [[w[1][k] for w in wanted] for k in range(len(group))]
            rows = await dest.reader.fetch(sql, [w[0] for w in wanted], *columns)
            own = {k for ks in own_keys.values() for k in ks}
            found_keys = sorted({key_text(r, key_columns) for r in rows})
            # Records already coupled (or being created) are no candidates: left out before locking, since a
            # common name can match thousands of them, more locks than the lock table holds. A candidate another
            # worker is coupling now (by match, or its own event) is decided after it commits: locked, then
            # checked again.
            coupled = await intents.taken(state, mapping.name, destination, found_keys)
            free = [k for k in found_keys if k not in coupled and k not in own]
            await lock_records(state, {lock_id(mapping.name, destination, k) for k in free})
            coupled |= await intents.taken(state, mapping.name, destination, free)
            for r in rows:
                row = dict(r)
                index = row.pop(table_gateway.MATCH_INDEX)
                key = key_text(row, key_columns)
                taken = key in coupled and (rematch or {}).get(index) != key  # its own interrupted match is not
                # PostgreSQL's lower() may fold a character Python's does not, or not fold it (a C locale): the match
                # rule is match_key's, the one cdc verify applies
                if taken or not matches(side.filter, row) or (
                        match_key(group, destination, row) != match_key(group, source, changes[index].row)):
                    continue
                matched[index].append(row)
        for i in indexes:
            result[i].append(tuple(matched.get(i, [])))
    return {i: tuple(groups) for i, groups in result.items()}
