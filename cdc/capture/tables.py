"""Which tables capture reads in each system: those the mapping file maps, with their schema."""

from __future__ import annotations

from cdc.capture.transactions import TableName
from cdc.mapping.model import MappingFile
from cdc.pair import System


def captured_tables(mapping: MappingFile, system: System) -> list[TableName]:
    seen: list[TableName] = []
    for m in mapping.mappings:
        side = m.side(system)
        name = (side.schema_, side.table)
        if name not in seen:
            seen.append(name)
    return seen

