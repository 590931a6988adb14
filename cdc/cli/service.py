"""`cdc run` (the whole service, supervised) and `cdc check` (exit 0 only when everything is healthy)."""

from __future__ import annotations

import asyncio
import signal

import typer

from cdc.cli import app, settings


@app.command()
def run(workers: int = typer.Option(1, min=1, help="Worker processes in the consumer group."),
        dashboard: bool = typer.Option(True, help="Serve the dashboard too."),
        capture: bool = typer.Option(True, help="Run capture for both systems.")) -> None:
    """Run capture, worker(s) and the dashboard; restart what fails; stop cleanly on SIGTERM / Ctrl-C."""
    from cdc.monitoring import server
    from cdc.supervisor import Supervisor, components

    s = settings()
    where = server.address(s) if dashboard else None  # a configuration it refuses stops everything here

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if where is not None:
            typer.echo(f"dashboard: {server.url(*where)}", err=True)
        await Supervisor(components(workers, dashboard, capture), json_logs=s.log_format == "json",
                         metrics_dir=s.home.resolve() / "metrics").run(stop)

    asyncio.run(main())


@app.command()
def check() -> None:
    """Exit 0 only when the broker and databases answer, lag is under the threshold and every topic the worker
    reads exists (for health checks). Lists the topic of each mapped table."""
    from cdc.monitoring.health import readiness

    report = asyncio.run(readiness(settings()))
    for name, ok, detail in report.checks:
        typer.echo(f"{'ok ' if ok else 'BAD'} {name}: {detail}")
    for topic in report.topics:
        where = f"{topic.system}.{topic.table} reads {topic.name}"
        if topic.exists:
            typer.echo(f"ok  topic {where} ({len(topic.partitions)} partitions)")
        else:
            typer.echo(f"BAD topic {where}: does not exist (the worker creates it at start; a Debezium connector "
                       "writes it once it captures the table)")
    raise typer.Exit(0 if report.ready and all(t.exists for t in report.topics) else 1)
