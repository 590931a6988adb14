"""Which topic carries the changes of each mapped table: `Settings.topic` applied to the mapping file's tables (with
the schema each mapping names), the one place the worker, topic creation, `cdc check` and the dashboard ask."""

from __future__ import annotations

from dataclasses import dataclass

from cdc.mapping.model import MappingFile
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings


@dataclass(frozen=True)
class TableTopic:
    system: System
    schema: str
    table: str
    topic: str


def table_topics(settings: Settings, mapping_file: MappingFile) -> list[TableTopic]:
    """Each mapped table once (ERP first, in mapping-file order) with its topic."""
    found: dict[tuple[System, str], TableTopic] = {}
    for system in SYSTEMS:
        for m in mapping_file.mappings:
            side = m.side(system)
            if (system, side.table) not in found:
                found[(system, side.table)] = TableTopic(system, side.schema_, side.table,
                                                         settings.topic(system, side.table, side.schema_))
    return list(found.values())
