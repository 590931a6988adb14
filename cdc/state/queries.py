"""Named SQL blocks: each store keeps its statements in a sibling `<store>.sql` file.

A block starts with a line `-- name: <identifier>` and runs to the next such line. Lines before the first
block may only be comments or blank.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from cdc.pair import SYSTEMS, System
from schemas import json_text

_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class Queries:
    """The blocks of one file, by name (`q["fetch"]` or `q.fetch`).

    Deliberately not a Mapping: its methods (`get`, `keys`...) would shadow queries of those names.
    """

    def __init__(self, source: str, blocks: dict[str, str]) -> None:
        self._source = source
        self._blocks = blocks

    def __getitem__(self, name: str) -> str:
        try:
            return self._blocks[name]
        except KeyError:
            raise KeyError(f"{self._source} has no query named {name!r}") from None

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, name: object) -> bool:
        return name in self._blocks


def parse(text: str, source: str = "<sql>") -> Queries:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _NAME.match(line.strip())
        if match:
            name = match.group(1)
            if not _IDENTIFIER.match(name):
                raise ValueError(f"{source}:{number}: query name {name!r} is not a lower-case identifier")
            if name in blocks:
                raise ValueError(f"{source}:{number}: query {name!r} is defined twice")
            current = blocks[name] = []
        elif current is not None:
            current.append(line)
        elif line.strip() and not line.strip().startswith("--"):
            raise ValueError(f"{source}:{number}: SQL before the first '-- name:' line")
    result: dict[str, str] = {}
    for name, lines in blocks.items():
        sql = "\n".join(lines).strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        result[name] = sql
    return Queries(source, result)


@functools.cache
def load(store: str) -> Queries:
    """The queries of `cdc/state/<store>.sql`, read once per process."""
    filename = f"{store}.sql"
    return parse(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"), filename)


# Conversions every store shares.

def rows_affected(status: str) -> int:
    """Row count of a command tag such as 'DELETE 3', 'UPDATE 0' or 'INSERT 0 2'."""
    return int(status.rsplit(" ", 1)[-1])


def jsonb_in(value: Any) -> str | None:
    """A value for a `$n::text::jsonb` parameter: text, so no connection codec is needed."""
    return None if value is None else json_text.dumps_sorted(value)


def jsonb_out(value: Any) -> Any:
    """jsonb arrives as text unless the caller's connection has a codec for it."""
    return json_text.loads(value) if isinstance(value, str) else value


def system_param(system: str) -> System:
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}, not {system!r}")
    return system  # type: ignore[return-value]
