"""Turning topic records into changes the decisions understand — or into poison, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdc import catalog
from cdc.mapping.model import MappingFile, TableMapping
from cdc.settings import SYSTEMS, Settings, System
from consumers.decisions.fields import typed_row
from consumers.decisions.record import Change
from consumers.decisions.values import CoercionError, canonical
from schemas.change_event import ChangeEvent, EventDecodeError


@dataclass(frozen=True)
class Incoming:
    """One change event, where it came from, and what it means for one mapping."""

    event: ChangeEvent
    raw: dict[str, Any]
    mapping: TableMapping
    change: Change
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    parked_id: int | None = None

    @property
    def source(self) -> System:
        return self.change.source


@dataclass(frozen=True)
class Poison:
    reason: str
    system: str | None
    table: str | None
    key: str | None


class Routes:
    """Which system and table each topic carries, and which mappings read that table."""

    def __init__(self, settings: Settings, mapping_file: MappingFile) -> None:
        self.mapping_file = mapping_file
        self.by_topic: dict[str, tuple[System, str]] = {}
        for system in SYSTEMS:
            for table in mapping_file.tables(system):
                self.by_topic[settings.topic(system, table)] = (system, table)

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)


def interpret(event: ChangeEvent, raw: dict[str, Any], system: System, tables: dict[str, catalog.Table],
              mappings: list[TableMapping]) -> list[tuple[TableMapping, Change]] | Poison:
    """The change for each mapping reading this event's table (replays: only the replay's mapping)."""
    table_name = event.source.table
    table = tables.get(table_name)
    if table is None:
        return Poison(f"{system} table {table_name!r} is not mapped", system, table_name, None)
    out: list[tuple[TableMapping, Change]] = []
    image = event.row
    key_column = table.primary_key[0]
    if image.get(key_column) is None:
        return Poison(f"{system}.{table_name}: the event carries no value for key column {key_column!r}",
                      system, table_name, None)
    columns = [c for c in image if c in table.columns]
    try:
        row = typed_row(image, table, columns)
    except CoercionError as exc:
        key = str(image.get(key_column))
        return Poison(f"{system}.{table_name} {key}: {exc}", system, table_name, key)
    key = str(canonical(row[key_column]))
    for mapping in mappings:
        if event.replay is not None and event.replay.mapping != mapping.name:
            continue
        side = mapping.side(system)
        modified_on = row.get(side.modified_on)
        out.append((mapping, Change(system, event.op, key, row, position=event.position[0],
                                    modified_on=modified_on, replay=event.replay is not None)))
    return out


def system_of(event: ChangeEvent, topic: str | None, routes: Routes) -> System | None:
    if event.system in SYSTEMS:
        return event.system  # type: ignore[return-value]
    if topic is not None and topic in routes.by_topic:
        return routes.by_topic[topic][0]
    return None


def decode(value: bytes | None) -> tuple[ChangeEvent | None, dict[str, Any] | None, str | None]:
    """(event, raw JSON, None) or (None, None, reason); a tombstone is (None, None, None)."""
    try:
        decoded = ChangeEvent.decode_wire(value)
    except EventDecodeError as exc:
        return None, None, str(exc)
    if decoded is None:
        return None, None, None
    event, payload = decoded
    return event, payload, None
