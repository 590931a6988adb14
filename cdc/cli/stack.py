"""`cdc stack up | down | status`: the local Kafka + PostgreSQL (the embedded default)."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from cdc import terminal
from cdc.cli import app, settings
from cdc.stack import control

stack_app = typer.Typer(no_args_is_help=True, help="The local Kafka broker and PostgreSQL cluster.")
app.add_typer(stack_app, name="stack")


@stack_app.command()
def up() -> None:
    """Install what is missing, start PostgreSQL and Kafka, return when both answer (and the broker serves
    consumer groups)."""
    asyncio.run(control.up(settings()))
    _print_status()


@stack_app.command()
def down() -> None:
    """Stop both services cleanly (data is kept under CDC_HOME)."""
    asyncio.run(control.down(settings()))
    typer.echo("stack stopped")


@stack_app.command()
def status() -> None:
    """Each service, its address, pid and whether it answers. Exit 1 when one does not."""
    if not _print_status():
        raise typer.Exit(1)


def _print_status() -> bool:
    pg, kafka = asyncio.run(control.status(settings()))
    table = Table("service", "address", "pid", "state", "log")
    for name, s in (("postgresql", pg), ("kafka", kafka)):
        state = "answering" if s.answering else ("running, not answering" if s.running else "stopped")
        table.add_row(name, s.address, str(s.pid or "-"), state, str(s.log_file))
    terminal.console().print(table)
    return pg.answering and kafka.answering
