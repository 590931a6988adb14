"""`cdc mappings`: check a mapping file (on its own, then against the live schemas), list its mappings, print its
JSON Schema."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from rich.table import Table as RichTable

from cdc import terminal
from cdc.catalog import read_mapped_tables
from cdc.cli import app, settings
from cdc.database import connect, describe
from cdc.errors import ConfigError, ServiceUnavailable
from cdc.mapping.filters import describe as describe_filter
from cdc.mapping.load import MappingFileError, load_mapping_file, locator
from cdc.mapping.model import MappingFile, TableMapping
from cdc.mapping.order import dependencies, dependency_order
from cdc.mapping.schema import mapping_schema
from cdc.mapping.validate import Problem, catalog_problems
from cdc.pair import SYSTEMS

mappings_app = typer.Typer(no_args_is_help=True, help="Check and list the table mappings.")
app.add_typer(mappings_app, name="mappings")

FileArgument = Annotated[Path | None, typer.Argument(help="Mapping file (default: CDC_MAPPING_FILE).",
                                                     show_default=False)]

CATALOG_TIMEOUT = 3.0


@mappings_app.command()
def validate(file: FileArgument = None) -> None:
    """Check the file, then, when both databases answer, the tables and columns it names."""
    path = file or settings().mapping_file
    mapping_file = _load(path)
    outcome = asyncio.run(_live_problems(mapping_file))
    if isinstance(outcome, str):
        typer.echo(f"databases not reachable: checked the file only ({outcome})")
    else:
        where = ", ".join(f"{system} {describe(settings().dsn(system))}" for system in SYSTEMS)
        typer.echo(f"checked against live schemas ({where})")
        at = locator(path)
        _exit_on([f"{at(problem.at)}: {problem.text}" for problem in outcome])
    typer.echo(f"ok: {len(mapping_file.mappings)} mappings in {path}")


@mappings_app.command()
def show(file: FileArgument = None,
         as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False) -> None:
    """The mappings in the order they sync, with their policies, dependencies and filters."""
    ordered = dependency_order(_load(file or settings().mapping_file))
    if as_json:
        typer.echo(json.dumps([_summary(m) for m in ordered], indent=2))
        return
    table = RichTable("mapping", "erp ↔ crm", "direction", "only coupled", "conflict", "deletion",
                      "after match", "depends on", "filters")
    for m in ordered:
        filters = "\n".join(f"{system}: {describe_filter(m.side(system).filter)}" for system in SYSTEMS
                            if m.side(system).filter is not None)
        table.add_row(m.name, f"{m.erp.table} ↔\n{m.crm.table}", m.direction,
                      "yes" if m.sync_only_coupled else "no", m.conflict, m.deletion,
                      m.after_match if m.match_on else "", "\n".join(dependencies(m)), filters)
    terminal.console().print(table)


@mappings_app.command()
def schema() -> None:
    """The JSON Schema of the mapping file, for editors (docs/mappings.md, 'Editor support')."""
    typer.echo(json.dumps(mapping_schema(), indent=2))


def _load(path: Path) -> MappingFile:
    try:
        return load_mapping_file(path)
    except MappingFileError as exc:
        _exit_on(exc.problems)
        raise


def _exit_on(problems: list[str]) -> None:
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise typer.Exit(ConfigError.exit_code)


async def _live_problems(mapping_file: MappingFile) -> list[Problem] | str:
    """Problems against the live catalogs, or why the databases could not be asked."""
    s = settings()
    async with AsyncExitStack() as stack:
        tables = {}
        try:
            for system in SYSTEMS:
                conn = await connect(s.dsn(system), role=system.upper(), timeout=CATALOG_TIMEOUT)
                stack.push_async_callback(conn.close)
                tables[system] = await read_mapped_tables(conn, mapping_file, system)
        except ServiceUnavailable as exc:
            return str(exc)
        except (asyncpg.PostgresError, OSError) as exc:
            return f"reading the {system} catalog at {describe(s.dsn(system))} failed: {exc}"
        return catalog_problems(mapping_file, tables["erp"], tables["crm"])


def _summary(m: TableMapping) -> dict[str, Any]:
    return {
        "name": m.name,
        "erp_table": f"{m.erp.schema_}.{m.erp.table}",
        "crm_table": f"{m.crm.schema_}.{m.crm.table}",
        "direction": m.direction,
        "sync_only_coupled": m.sync_only_coupled,
        "conflict": m.conflict,
        "deletion": m.deletion,
        "after_match": m.after_match,
        "depends_on": dependencies(m),
        "filters": {system: None if (f := m.side(system).filter) is None
                    else f.model_dump(by_alias=True, mode="json", exclude_unset=True) for system in SYSTEMS},
    }
