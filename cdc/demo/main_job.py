"""`cdc demo`: the main job on the embedded default, from nothing to a live sync you can watch.

Stack up → demo databases → seed both systems (once) → capture, worker and dashboard under the supervisor →
full synchronization (creation kept on, so new records flow both ways) → what to try → until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from rich.console import Console

from cdc import database
from cdc.cli.progress import LineReporter
from cdc.demo.dataset import FORMER_SALESPERSON
from cdc.demo.seed import seed
from cdc.demo.setup import create_databases, drop_database
from cdc.demo.workload import generate
from cdc.mapping.load import load_mapping_file
from cdc.monitoring import server
from cdc.orchestrator.full_sync import full_sync, keep_creating
from cdc.orchestrator.workers import group_members
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from cdc.stack import control
from cdc.stack.postgres import psql_command
from cdc.state import job_errors
from cdc.state.migrate import migrate
from cdc.supervisor import InThread, Supervisor, components
from consumers import Worker


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 2000
    load: float = 0.0
    reset: bool = False
    seed: int = 1


async def run_demo(settings: Settings, options: DemoOptions, stop: asyncio.Event, console: Console) -> None:
    say = console.print
    dashboard = server.address(settings)  # before anything starts: a dashboard that refuses it would only restart
    say("[bold]1/5[/] local stack (PostgreSQL + Kafka)…")
    await control.up(settings)
    say("[bold]2/5[/] demo ERP and CRM databases…")
    if options.reset and settings.state_dsn is None:
        # Couplings, jobs and offsets describe the old data: they go with it.
        admin = await database.connect(settings.local_dsn("postgres"), role="maintenance")
        try:
            await drop_database(admin, settings.state_database)
        finally:
            await admin.close()
    await create_databases(settings, reset=options.reset)
    state = await database.connect(settings.dsn("state"), role="state")
    try:
        await migrate(state)
    finally:
        await state.close()
    if await _customers(settings) == 0:
        report = await seed(settings, erp=True, crm=True, customers=options.customers, seed=options.seed,
                            overlap=0.3, reset=False)
        say(f"    seeded {report.total:,} rows in {report.seconds:.1f} s")
    else:
        say("    already seeded (use --reset to start over)")

    say("[bold]3/5[/] capture, worker and dashboard…")
    logs = settings.home.resolve() / "logs"
    supervisor = Supervisor(components(workers=1, dashboard=True), metrics_dir=settings.home.resolve() / "metrics",
                            log_dir=logs)
    try:
        # on a loop of its own: the full sync below keeps this one busy, and would delay the restarts it logs
        async with InThread(supervisor):
            await _live(settings, options, stop, console, logs, dashboard)
    finally:
        say("demo stopped (the stack keeps running: `cdc stack down` stops it)")


async def _live(settings: Settings, options: DemoOptions, stop: asyncio.Event, console: Console, logs: Path,
                dashboard: tuple[str, int]) -> None:
    """Full sync once capture and the worker are up, then the live sync (and the load) until `stop`."""
    say = console.print
    await _wait_for_slots(settings, stop)
    await _wait_for_worker(settings, stop)
    say("[bold]4/5[/] full synchronization (dependency order)…")
    mapping_file = load_mapping_file(settings.mapping_file)
    result = await full_sync(settings, mapping_file, stop=stop, reporter=LineReporter(), worker=Worker)
    if stop.is_set():
        return
    await keep_creating(settings, [m.name for m in mapping_file.mappings])
    say(f"    full sync {result.status}; new records now flow both ways")
    _tell_errors(console, await _errors_left(settings))
    load_task = None
    if options.load > 0:
        load_task = asyncio.create_task(generate(settings, rate=options.load, stop=stop, seed=options.seed))
    if not await _listening(*dashboard, stop):
        say(f"    the dashboard does not answer yet: see {logs}/dashboard.log")
    _tell(console, settings, options, logs, server.url(*dashboard))
    try:
        await stop.wait()
    finally:
        if load_task is not None:
            with contextlib.suppress(Exception):
                await load_task


async def _customers(settings: Settings) -> int:
    conn = await database.connect(settings.dsn("erp"), role="ERP")
    try:
        return await conn.fetchval("SELECT count(*) FROM customer")
    finally:
        await conn.close()


async def _wait_for_slots(settings: Settings, stop: asyncio.Event, timeout: float = 120) -> None:
    """Capture is live once each system's replication slot exists (creating one waits for open transactions)."""
    deadline = time.monotonic() + timeout
    for system in SYSTEMS:
        conn = await database.connect(settings.dsn(system), role=system.upper())
        try:
            while not stop.is_set():
                if await conn.fetchval("SELECT count(*) FROM pg_replication_slots WHERE database = "
                                       "current_database() AND confirmed_flush_lsn IS NOT NULL"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"capture of {system} did not start: see {settings.home}/logs/capture.log")
                await asyncio.sleep(0.3)
        except asyncpg.PostgresError:
            raise
        finally:
            await conn.close()


async def _listening(host: str, port: int, stop: asyncio.Event, timeout: float = 60) -> bool:
    """Whether the dashboard accepts connections (waiting up to `timeout`: a child process starting on a busy
    machine can take longer than the full sync of a small demo)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), port), 2)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.3)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


DELIBERATE = ("The demo data's deliberate cases, so you can see what errors look like: a salesperson who left "
              f"({FORMER_SALESPERSON[0]}, blocked) exists only in the ERP, and SALESPEOPLE carries CRM users to the "
              "ERP only, so the two customers still assigned to them cannot get an account owner; one blocked "
              "customer (outside the CUSTOMER filter) has contacts, and so has one CRM account that is a partner, "
              "not a customer. Everything else is coupled and in sync: `cdc verify`.")


async def _errors_left(settings: Settings) -> list[job_errors.JobError]:
    """The open and parked errors once the full sync has run."""
    conn = await database.connect(settings.dsn("state"), role="state")
    try:
        return await job_errors.list_errors(conn, open_only=True, limit=1000)
    finally:
        await conn.close()


def _tell_errors(console: Console, errors: list[job_errors.JobError], shown: int = 20) -> None:
    if not errors:
        console.print("    no open errors")
        return
    console.print(f"    {len(errors)} record(s) cannot sync (`cdc errors`, the dashboard's Errors page):",
                  highlight=False, markup=False)
    for e in sorted(errors, key=lambda e: (e.mapping, e.source_system, e.source_key))[:shown]:
        console.print(f"      #{e.id} {e.state}: {e.message}", highlight=False, markup=False, soft_wrap=True)
    if len(errors) > shown:
        console.print(f"      ... and {len(errors) - shown} more")
    console.print(f"    {DELIBERATE}", highlight=False, markup=False, soft_wrap=True)


async def _wait_for_worker(settings: Settings, stop: asyncio.Event, timeout: float = 120) -> None:
    """The supervised worker has joined the consumer group: the full sync's replays are its work (a command finding
    no worker runs one of its own, in this process)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and not await group_members(settings):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker did not join group {settings.consumer_group}: see "
                               f"{settings.home}/logs/worker-1.log")
        await asyncio.sleep(0.5)


def _tell(console: Console, settings: Settings, options: DemoOptions, logs: object, dashboard: str) -> None:
    psql = psql_command(settings)
    console.print(f"""
[bold green]5/5 live.[/] Dashboard: [link]{dashboard}[/link]
    (logs of capture, worker and dashboard: {logs})

Three things to try, in another terminal:
  1. Edit a customer in the ERP and watch the CRM account change within a second:
       {psql} {settings.erp_database} -c "UPDATE customer SET city = 'Bergen' WHERE no = 'C00001'"
       {psql} {settings.crm_database} -c "SELECT name, address1_city FROM account WHERE accountnumber = 'C00001'"
  2. Create an account in the CRM and find it as a new ERP customer (and coupled):
       {psql} {settings.crm_database} -c "INSERT INTO account(name, emailaddress1) VALUES ('Demo AS', 'hi@demo.no')"
       {psql} {settings.erp_database} -c "SELECT no, name, email FROM customer WHERE email = 'hi@demo.no'"
  3. Look at what happened: `cdc jobs`, `cdc errors`, `cdc verify` — or the dashboard's Jobs and Errors pages.
{"" if options.load else "  (Add --load 50 to make 50 changes per second on both sides and watch the dashboard move.)"}
Ctrl-C stops the demo.""", highlight=False, soft_wrap=True)
