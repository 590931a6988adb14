"""`cdc capture`: run capture (the default), `reset` a system's slot, show `status` (position and lag)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from enum import StrEnum

import typer
from rich.table import Table

from cdc import terminal
from cdc.cli import app, fail, settings
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings

capture_app = typer.Typer(invoke_without_command=True,
                          help="Capture committed changes of the ERP and the CRM into Kafka topics.")
app.add_typer(capture_app, name="capture")


class Which(StrEnum):
    erp = "erp"
    crm = "crm"
    all = "all"


class One(StrEnum):
    erp = "erp"
    crm = "crm"


def _systems(which: Which) -> list[System]:
    return list(SYSTEMS) if which is Which.all else [which.value]  # type: ignore[list-item]


@capture_app.callback()
def capture(ctx: typer.Context,
            system: Which = typer.Option(Which.all, "--system", "-s", help="Which system to capture.")) -> None:
    """Run capture until SIGTERM or Ctrl-C (each system finishes the batch in flight, then stops)."""
    if ctx.invoked_subcommand is not None:
        return
    asyncio.run(_run(settings(), _systems(system)))


async def _run(s: Settings, systems: list[System]) -> None:
    from cdc.capture.loop import run_capture

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_capture(s, systems, stop)


@capture_app.command()
def reset(system: One = typer.Option(..., "--system", "-s", help="The system whose slot is recreated."),
          yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Drop and recreate a system's replication slot: capture restarts from now."""
    asyncio.run(_reset(settings(), system.value, yes))  # type: ignore[arg-type]


async def _reset(s: Settings, system: System, yes: bool) -> None:
    from cdc.capture.lag import read_lag
    from cdc.capture.loop import open_source, prepare_source
    from cdc.capture.slot import drop_slot
    from cdc.mapping.load import load_mapping_file

    mapping = load_mapping_file(s.mapping_file)
    conn = await open_source(s, system)
    try:
        lag = await read_lag(conn, s, system, probe=False)
        if lag.slot_active:
            fail(f"slot {lag.slot} is being read right now: stop capture first")
        if not yes:
            behind = f"{lag.lag_bytes:,} bytes of WAL" if lag.lag_bytes is not None else "no slot yet"
            typer.confirm(
                f"Reset capture of {system} (slot {lag.slot}, {behind} behind)? Every change committed in "
                f"{system} and not yet published to Kafka is lost: it will never be published. Continue?",
                abort=True)
        dropped = await drop_slot(conn, lag.slot)
        await prepare_source(conn, s, system, mapping)
    finally:
        await conn.close()
    typer.echo(f"{system}: slot {lag.slot} {'recreated' if dropped else 'created'}; capture starts from now")


@capture_app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Slot position and capture lag (WAL bytes behind, age of the oldest unpublished change) per system."""
    lags = asyncio.run(_status(settings()))
    if as_json:
        typer.echo(json.dumps([lag.as_dict() for lag in lags], indent=2))
        return
    table = Table("system", "slot", "capture", "confirmed", "lag", "oldest unpublished", "last published")
    for lag in lags:
        table.add_row(
            lag.system, lag.slot if lag.slot_exists else f"{lag.slot} (missing)",
            "running" if lag.capture_running else ("reading" if lag.slot_active else "stopped"),
            _lsn(lag.confirmed_lsn), "-" if lag.lag_bytes is None else _bytes(lag.lag_bytes),
            "unknown" if lag.oldest_unpublished_age is None else f"{lag.oldest_unpublished_age:.1f} s",
            _when(lag.last_published_at))
    terminal.console().print(table)


async def _status(s: Settings) -> list:
    from cdc.capture.lag import capture_lag

    return list(await asyncio.gather(*(capture_lag(s, system) for system in SYSTEMS)))


def _lsn(lsn: int | None) -> str:
    from cdc.capture.lsn import format_lsn

    return "-" if lsn is None else format_lsn(lsn)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({time.time() - at:.0f} s ago)"
