"""`cdc demo`: the whole demo (no subcommand), or its steps: `setup`, `seed`, `load`."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cdc.cli import app, fail, settings
from cdc.demo.seed import seed as seed_databases
from cdc.demo.setup import create_databases
from cdc.demo.workload import WorkloadReport, generate

demo_app = typer.Typer(invoke_without_command=True,
                       help="The demo ERP and CRM: run the whole demo, or set up, seed and load them.")
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=1, help="Customers to seed (other tables scale along).")] = 2000,
    load: Annotated[float, typer.Option(min=0, help="Changes per second to make on both sides (0: none).")] = 0,
    reset: Annotated[bool, typer.Option("--reset", help="Start over: drop and re-seed the demo databases.")] = False,
) -> None:
    """Without a subcommand: the whole demo — stack, demo systems, full sync, live sync, dashboard."""
    if ctx.invoked_subcommand is None:
        from cdc.cli.sync import run_stoppable
        from cdc.demo.main_job import DemoOptions, run_demo

        options = DemoOptions(customers=customers, load=load, reset=reset)
        run_stoppable(lambda stop: run_demo(settings(), options, stop, Console()))


@demo_app.command()
def setup(
    reset: Annotated[bool, typer.Option(
        "--reset", help="Drop and recreate the ERP and CRM databases (and their replication slots).")] = False,
) -> None:
    """Create the ERP, CRM and state databases if missing and apply the demo schemas."""
    for database, outcome in asyncio.run(create_databases(settings(), reset=reset)).items():
        typer.echo(f"{database}: {outcome}")
    typer.echo("demo schemas applied")


@demo_app.command()
def seed(
    erp: Annotated[bool, typer.Option("--erp", help="Seed the ERP.")] = False,
    crm: Annotated[bool, typer.Option("--crm", help="Seed the CRM.")] = False,
    both: Annotated[bool, typer.Option("--both", help="Seed both (the default).")] = False,
    customers: Annotated[int, typer.Option(min=1, help="Customers (and accounts); other tables scale along.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed makes the same data.")] = 1,
    overlap: Annotated[float, typer.Option(min=0.0, max=1.0,
                                           help="Share of records that exist on both sides.")] = 0.3,
    reset: Annotated[bool, typer.Option("--reset", help="Empty the demo tables first.")] = False,
) -> None:
    """Fill the demo databases with generated, realistic data."""
    if both or not (erp or crm):
        erp = crm = True
    report = asyncio.run(seed_databases(settings(), erp=erp, crm=crm, customers=customers, seed=seed,
                                        overlap=overlap, reset=reset))
    table = Table("system", "table", "rows")
    for (system, name), rows in report.rows.items():
        table.add_row(system, name, f"{rows:,}")
    console = Console()
    console.print(table)
    console.print(f"{report.total:,} rows in {report.seconds:.1f}s ({report.rows_per_second:,.0f} rows/s); "
                  f"{report.near_duplicates} near-duplicates")


@demo_app.command()
def load(
    rate: Annotated[float, typer.Option(help="Changes per second, spread over both systems.")],
    duration: Annotated[float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the choice of changes.")] = 1,
) -> None:
    """Make a steady stream of inserts, updates and deletes in the ERP and the CRM."""
    if rate <= 0:
        fail("--rate must be positive", 2)
    if duration is not None and duration <= 0:
        fail("--duration must be positive", 2)

    async def run() -> WorkloadReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await generate(settings(), rate=rate, duration=duration, seed=seed, stop=stop)

    report = asyncio.run(run())
    table = Table("system", "table", "change", "count")
    for (system, name, op), count in sorted(report.changes.items()):
        table.add_row(system, name, op, f"{count:,}")
    console = Console()
    console.print(table)
    console.print(f"{report.total:,} changes in {report.seconds:.1f}s ({report.per_second:,.1f}/s); "
                  f"{report.missed} missed (record gone), {report.failed} failed")
