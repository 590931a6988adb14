"""The order in which mappings are synced: a mapping comes after every mapping it depends on.

A mapping depends on the mappings it names in `depends_on` and on those its field lookups go through (a
lookup can only translate a key once the looked-up records are coupled). A lookup into the mapping itself (a
hierarchy within one table) is no dependency; a declared self-dependency is a cycle.
"""

from __future__ import annotations

from cdc.errors import ConfigError
from cdc.mapping.model import MappingFile, TableMapping


def dependencies(mapping: TableMapping) -> list[str]:
    """Declared dependencies first (in their order), then lookups not already declared."""
    names = list(dict.fromkeys(mapping.depends_on))
    names += [name for name in mapping.lookups if name not in names and name != mapping.name]
    return names


def dependency_order(mapping_file: MappingFile) -> list[TableMapping]:
    """Topological order; among mappings free to go next, the one earliest in the file goes first."""
    pending = list(mapping_file.mappings)
    placed: set[str] = set()
    ordered: list[TableMapping] = []
    while pending:
        ready = next((m for m in pending if all(d in placed for d in dependencies(m))), None)
        if ready is None:
            raise ConfigError(f"mappings depend on each other in a cycle: {' -> '.join(_cycle(pending))}")
        pending.remove(ready)
        placed.add(ready.name)
        ordered.append(ready)
    return ordered


def _cycle(pending: list[TableMapping]) -> list[str]:
    """A cycle among mappings none of which can be placed: follow unplaced dependencies until one repeats."""
    by_name = {m.name: m for m in pending}
    path = [pending[0].name]
    while True:
        following = next(d for d in dependencies(by_name[path[-1]]) if d in by_name)
        if following in path:
            return path[path.index(following):] + [following]
        path.append(following)
