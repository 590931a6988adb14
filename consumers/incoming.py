"""Turning topic records into changes the decisions understand — or into poison, with the reason.

An event is a notice that a row changed: the engine re-reads the row before deciding (`consumers.batch`), so only
the event's operation and key are read here. The key is typed by the image's embedded schema when the record has
one (a stock Debezium connector's precise decimals, epoch-based dates...), else by the key column's type
(`schemas.connect_json`); the image's other columns are never looked at, so a value the decision does not need
cannot poison an event. An event is poison only when its operation or key cannot be read.

Records that are not changes for the sync are skipped: tombstones, Debezium's heartbeats, transaction boundaries,
logical decoding messages and truncates, and the sync's own writes read back by a Debezium connector (their
transaction carries one of our replication origins, `source.origin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdc import catalog
from cdc.errors import ConfigError
from cdc.mapping.model import MappingFile, TableMapping
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings
from cdc.topics.names import table_topics
from cdc.values import CoercionError, canonical, coerce, key_text
from consumers.decisions.record import Change
from schemas import connect_json
from schemas.change_event import ChangeEvent, Decoded, EventDecodeError, NotAChange


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
    keep: System | None = None
    """An operator's resolution of a conflict (`cdc resolve`): this side's values win."""

    @property
    def source(self) -> System:
        return self.change.source


@dataclass(frozen=True)
class Poison:
    reason: str
    system: str | None
    table: str | None
    key: str | None


@dataclass(frozen=True)
class Echo:
    """A change the sync itself wrote, read back by a producer that does not filter replication origins."""

    system: System
    table: str
    key: str
    origin: str


class Routes:
    """Which system each topic the worker reads belongs to."""

    def __init__(self, settings: Settings, mapping_file: MappingFile) -> None:
        self.mapping_file = mapping_file
        self.by_topic: dict[str, System] = {}
        for found in table_topics(settings, mapping_file):
            if self.by_topic.setdefault(found.topic, found.system) != found.system:
                raise ConfigError(f"topic {found.topic!r} is named for both the ERP and the CRM: set CDC_ERP_TOPIC, "
                                  "CDC_CRM_TOPIC or CDC_TOPIC_NAMES so each system has its own topics")

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)


def decode(value: bytes | None) -> Decoded | NotAChange | Poison:
    """The change event of a record's value, what else the record is, or why it is poison."""
    try:
        return ChangeEvent.decode_wire(value)
    except EventDecodeError as exc:
        return Poison(str(exc), None, None, None)


def interpret(decoded: Decoded, system: System, tables: dict[str, catalog.Table], mappings: list[TableMapping],
              *, origin_prefix: str) -> list[tuple[TableMapping, Change]] | Poison | Echo:
    """The change for each mapping reading this event's table (replays: only the replay's mapping), or the echo of
    one of the sync's own writes."""
    event = decoded.event
    table_name = event.source.table
    table = tables.get(table_name)
    if table is None:
        return Poison(f"{system} table {table_name!r} is not mapped", system, table_name, None)
    image = event.row
    typed_key: dict[str, Any] = {}
    for key_column in table.primary_key:
        raw_key = image.get(key_column)
        if raw_key is None:
            return Poison(f"{system}.{table_name}: the event carries no value for key column {key_column!r}",
                          system, table_name, None)
        column = table.columns[key_column]
        try:
            schema = decoded.columns.get(key_column)
            value = (connect_json.decode(raw_key, schema) if schema is not None
                     else connect_json.read_column(raw_key, column.type_name, column.scale))
            typed_key[key_column] = coerce(value, column.type_name)
        except (connect_json.ConnectValueError, CoercionError) as exc:
            return Poison(f"{system}.{table_name}: key column {key_column!r}: {exc}", system, table_name,
                          str(raw_key)[:100])
    key = str(canonical(typed_key[key_column])) if len(typed_key) == 1 else key_text(typed_key, table.primary_key)
    origin = event.source.origin
    if origin and origin.startswith(origin_prefix):
        return Echo(system, table_name, key, origin)
    out: list[tuple[TableMapping, Change]] = []
    for mapping in mappings:
        if event.replay is not None and event.replay.mapping != mapping.name:
            continue
        out.append((mapping, Change(system, event.op, key, dict(typed_key), position=event.position[0],
                                    replay=event.replay is not None)))
    return out


def system_of(event: ChangeEvent, topic: str | None, routes: Routes) -> System | None:
    if event.system in SYSTEMS:
        return event.system  # type: ignore[return-value]
    if topic is not None:
        return routes.by_topic.get(topic)
    return None
