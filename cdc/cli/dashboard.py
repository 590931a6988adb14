"""`cdc dashboard`: serve the live dashboard, `/metrics`, `/healthz` and `/readyz` until SIGTERM / Ctrl-C.

`serve_dashboard(settings, stop)` runs the same server as a task (the `cdc run` supervisor).
"""

from __future__ import annotations

import asyncio
import signal

import typer

from cdc.cli import app, settings
from cdc.monitoring.server import DashboardOptions, serve_dashboard

__all__ = ["dashboard", "serve_dashboard", "DashboardOptions"]


@app.command()
def dashboard(
    host: str | None = typer.Option(None, "--host",
                                    help="Address to bind (default CDC_DASHBOARD_HOST, 127.0.0.1). A non-loopback "
                                         "address needs CDC_DASHBOARD_TOKEN."),
    port: int | None = typer.Option(None, "--port", "-p", min=0, max=65535,
                                    help="Port (default CDC_DASHBOARD_PORT, 8077; 0 picks a free one)."),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="Seconds between samples."),
    history: float = typer.Option(10.0, "--history", min=1.0, help="Minutes of history the charts show."),
) -> None:
    """Live dashboard: topics and consumer lag, capture, jobs, errors (retry / skip), mappings, record lookup."""
    options = DashboardOptions(host=host, port=port, interval=interval, history_minutes=history)
    asyncio.run(_until_signalled(options))


async def _until_signalled(options: DashboardOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_dashboard(settings(), stop, options)
