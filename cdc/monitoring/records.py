"""Record lookup: one record of one system by key — per mapping its coupling, the partner record side by side
(both rows read from the ERP and the CRM), and the recent decisions about either (`cdc.state.record_log`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from cdc import catalog, table_gateway
from cdc.mapping.model import MappingFile, Side, TableMapping
from cdc.monitoring.snapshot import Collector, SectionFailed
from cdc.pair import System, other
from cdc.state import couplings, record_log
from cdc.state.couplings import Coupling
from cdc.values import key_text as record_key_text
from schemas import key_text


@dataclass(frozen=True)
class RecordRow:
    system: System
    table: str
    key_column: str
    key: str
    row: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.row is not None


@dataclass(frozen=True)
class FieldPair:
    erp_column: str | None
    crm_column: str | None
    direction: str
    enabled: bool
    erp_value: Any = None
    crm_value: Any = None
    erp_synced: Any = None  # the value as last synced (the coupling's fingerprint)
    crm_synced: Any = None


@dataclass(frozen=True)
class RecordMatch:
    mapping: TableMapping
    system: System
    key: str
    coupling: Coupling | None
    erp: RecordRow | None
    crm: RecordRow | None
    fields: list[FieldPair] = field(default_factory=list)
    log: list[record_log.LogEntry] = field(default_factory=list)


def key_label(side: Side) -> str:
    """The key's column, or its columns in parentheses (a composite key)."""
    return side.key if isinstance(side.key, str) else f"({', '.join(side.key)})"


async def read_row(conn: asyncpg.Connection, system: System, side: Side, key: str) -> RecordRow:
    """The row of `side`'s table whose key is `key` (`schemas.key_text`; compared as the key columns' types in the
    catalog)."""
    label = key_label(side)
    found = RecordRow(system, side.table, label, key)
    table = (await catalog.read_tables(conn, side.schema_, [side.table])).get(side.table)
    if table is None or any(column not in table.columns for column in side.key_columns):
        return replace(found, problem=f"{system} table {side.table} or its key column {label} does not exist")
    try:
        parts = key_text.decode(key, len(side.key_columns))
    except key_text.KeyTextError as exc:
        return replace(found, problem=str(exc))
    keyed = replace(table, primary_key=list(side.key_columns))  # the key the mapping names
    try:
        row = await conn.fetchrow(table_gateway.row_by_key_text(keyed), *parts)
    except (asyncpg.DataError, asyncpg.InvalidTextRepresentationError):
        types = ", ".join(table.columns[column].type_name for column in side.key_columns)
        return replace(found, problem=f"{key!r} is not a valid {types} key")
    return found if row is None else replace(found, row=dict(row))


async def lookup(collector: Collector, mapping_file: MappingFile, system: System, key: str,
                 mapping: str | None = None, log_limit: int = 20) -> tuple[list[RecordMatch], list[str]]:
    """The record under each mapping (or the one named) where it exists, is coupled or has log entries; and the
    problems met (redacted)."""
    candidates = [mapping_file.get(mapping)] if mapping else list(mapping_file.mappings)
    problems: list[str] = []

    async def state_part(conn: asyncpg.Connection) -> tuple[dict[str, Coupling | None], list[record_log.LogEntry]]:
        found = {m.name: await couplings.fetch_one(conn, m.name, system, key) for m in candidates}
        return found, await record_log.recent(conn, system, key, limit=200)

    try:
        coupled, own_log = await collector.run("state", state_part)
    except SectionFailed as exc:
        problems.append(str(exc))
        coupled, own_log = {}, []

    partner = other(system)
    partner_keys = {name: c.key(partner) for name, c in coupled.items() if c is not None}

    async def rows_of(role: System, wanted: list[tuple[TableMapping, str]]) -> dict[str, RecordRow]:
        async def work(conn: asyncpg.Connection) -> dict[str, RecordRow]:
            return {m.name: await read_row(conn, role, m.side(role), k) for m, k in wanted}
        if not wanted:
            return {}
        try:
            return await collector.run(role, work)
        except SectionFailed as exc:
            problems.append(str(exc))
            return {m.name: RecordRow(role, m.side(role).table, key_label(m.side(role)), k, problem=str(exc))
                    for m, k in wanted}

    own_rows = await rows_of(system, [(m, key) for m in candidates])
    partner_rows = await rows_of(partner, [(m, partner_keys[m.name]) for m in candidates if m.name in partner_keys])

    partner_log: list[record_log.LogEntry] = []
    if partner_keys:
        async def partner_entries(conn: asyncpg.Connection) -> list[record_log.LogEntry]:
            entries: list[record_log.LogEntry] = []
            for k in sorted(set(partner_keys.values())):
                entries += await record_log.recent(conn, partner, k, limit=200)
            return entries
        try:
            partner_log = await collector.run("state", partner_entries)
        except SectionFailed as exc:
            problems.append(str(exc))

    matches: list[RecordMatch] = []
    for m in candidates:
        coupling = coupled.get(m.name)
        own = own_rows.get(m.name)
        entries = [e for e in own_log if e.mapping == m.name]
        if coupling is not None:
            entries += [e for e in partner_log if e.mapping == m.name and e.key == coupling.key(partner)]
        entries.sort(key=lambda e: e.id or 0, reverse=True)
        if mapping is None and coupling is None and not entries and (own is None or not own.found):
            continue
        rows = {system: own, partner: partner_rows.get(m.name)}
        matches.append(RecordMatch(m, system, key, coupling, rows["erp"], rows["crm"],
                                   pairs(m, rows["erp"], rows["crm"], coupling), entries[:log_limit]))
    return matches, list(dict.fromkeys(problems))


class _Absent:
    """A column the coupling's fingerprint does not hold (shown empty, unlike NULL)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def pairs(m: TableMapping, erp: RecordRow | None, crm: RecordRow | None,
          coupling: Coupling | None) -> list[FieldPair]:
    """The mapping's fields with each side's current and last-synced value."""
    erp_row = erp.row if erp is not None and erp.row is not None else {}
    crm_row = crm.row if crm is not None and crm.row is not None else {}
    erp_synced = (coupling.erp_values if coupling else None) or {}
    crm_synced = (coupling.crm_values if coupling else None) or {}
    found: list[FieldPair] = []
    for f in m.fields:
        erp_column, erp_value, erp_last = _held(f.columns("erp"), erp_row, erp_synced, f.constant)
        crm_column, crm_value, crm_last = _held(f.columns("crm"), crm_row, crm_synced, f.constant)
        found.append(FieldPair(erp_column=erp_column, crm_column=crm_column, direction=f.direction,
                               enabled=f.enabled, erp_value=erp_value, crm_value=crm_value, erp_synced=erp_last,
                               crm_synced=crm_last))
    return found


def _held(columns: tuple[str, ...], row: Mapping[str, Any], synced: Mapping[str, Any],
          constant: Any) -> tuple[str | None, Any, Any]:
    """(column, value now, value last synced) of one side of a field: a lookup naming several columns shows
    them together, their values as the key text they make."""
    if not columns:
        return None, constant, ABSENT
    if len(columns) == 1:
        return columns[0], row.get(columns[0]), synced.get(columns[0], ABSENT)
    now = None if any(row.get(c) is None for c in columns) else record_key_text(row, columns)
    last = [synced.get(c, ABSENT) for c in columns]
    if ABSENT in last or None in last:
        return ", ".join(columns), now, ABSENT if ABSENT in last else None
    return ", ".join(columns), now, key_text.encode([str(v) for v in last])


def show(value: Any) -> str:
    """A column value as text for the page."""
    if value is ABSENT:
        return ""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return str(value)
