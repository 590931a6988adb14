"""SQL against the ERP's and the CRM's tables is built by the table gateway (`cdc.table_gateway`) alone.

Quoting an identifier is how a module builds a statement of its own around a table's names; so outside the gateway,
only the modules listed here may quote, each for something other than the mapped tables' rows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdc", "consumers", "schemas")
GATEWAY = "cdc/table_gateway.py"
QUOTING = frozenset({"quote_ident", "qualified"})

ALLOWED = {
    "cdc/database.py": "re-exports the gateway's quoting for statements about the server's own objects",
    "cdc/stack/postgres.py": "the embedded server's roles and databases",
    "cdc/capture/slot.py": "the publication: its name, and the captured tables it lists (DDL, no rows)",
    "cdc/demo/setup.py": "the demo's databases",
    "cdc/demo/seed.py": "the demo's own schema: truncate, analyze and count its tables while seeding them",
    "cdc/mapping/filters.py": "a filter's columns in the condition it compiles, quoted by the gateway's function",
}


def quoting(source: str) -> list[str]:
    """Where a module uses `quote_ident` or `qualified`: imported, called, passed on, or read off a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name in QUOTING]
        elif isinstance(node, ast.Name) and node.id in QUOTING:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in QUOTING:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def _modules() -> dict[str, str]:
    return {path.relative_to(ROOT).as_posix(): path.read_text() for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def offenders(modules: dict[str, str]) -> dict[str, list[str]]:
    return {path: uses for path, source in modules.items()
            if path != GATEWAY and path not in ALLOWED and (uses := quoting(source))}


def test_only_the_gateway_quotes_the_tables_names() -> None:
    assert offenders(_modules()) == {}, "build the statement in cdc/table_gateway.py and ask it (docs/architecture.md)"


def test_a_statement_built_in_the_engine_fails_the_check() -> None:
    modules = _modules()
    modules["consumers/systems.py"] += ("\nfrom cdc.database import qualified\n"
                                        "COUNT = f\"SELECT count(*) FROM {qualified('public', 'customer')}\"\n")
    assert list(offenders(modules)) == ["consumers/systems.py"]


def test_every_allowed_module_still_quotes() -> None:
    """An entry no module needs any more goes: the list stays the modules that quote, and why."""
    modules = _modules()
    assert {path for path in ALLOWED if not quoting(modules[path])} == set()


def test_filters_quote_with_the_gateway() -> None:
    tree = ast.parse((ROOT / "cdc/mapping/filters.py").read_text())
    sources = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and any(a.name in QUOTING for a in node.names)}
    assert sources == {"cdc.table_gateway"}


@pytest.mark.parametrize("snippet", [
    "from cdc.database import qualified, quote_ident\n"
    "sql = f'SELECT * FROM {qualified(schema, table)} WHERE {quote_ident(key)} = $1'",
    "from cdc import database\nsql = f'DELETE FROM {database.qualified(schema, table)}'",
    "from cdc import table_gateway\nnames = ', '.join(map(table_gateway.quote_ident, columns))",
    "def names(columns):\n    from cdc.table_gateway import quote_ident as q\n    return [q(c) for c in columns]",
])
def test_a_module_quoting_a_tables_names_is_caught(snippet: str) -> None:
    assert quoting(snippet)


def test_sql_that_only_names_the_function_is_no_use() -> None:
    """PostgreSQL's own quote_ident() inside a statement's text (cdc/demo/seed.py) is not a use."""
    assert quoting("sql = \"SELECT quote_ident(n.nspname) FROM pg_namespace n\"") == []
