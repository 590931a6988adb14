"""`cdc status`: what `/readyz` knows (broker and databases reachable, consumer lag under the threshold) plus
capture lag, consumer lag, open errors and the last jobs. Exits 1 when not ready."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cdc import terminal
from cdc.cli import app, settings
from cdc.monitoring.health import Readiness, assess, ready_max_lag
from cdc.monitoring.model import Snapshot
from cdc.monitoring.pages import fmt_ago, fmt_bytes, fmt_number, fmt_seconds, fmt_when
from cdc.monitoring.snapshot import Collector
from cdc.settings import Settings

LAST_JOBS = 5


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Is the pipeline ready? Services, consumer and capture lag, open errors, last jobs. Exit 1 when not."""
    s = settings()
    snapshot = asyncio.run(_collect(s))
    ready = assess(snapshot, ready_max_lag(s))
    if as_json:
        typer.echo(json.dumps(as_dict(snapshot, ready), indent=2, default=str))
    else:
        show(snapshot, ready, terminal.console())
    if not ready.ready:
        raise typer.Exit(1)


async def _collect(s: Settings) -> Snapshot:
    async with Collector(s, jobs_limit=LAST_JOBS, errors_limit=1, capture_probe=True) as collector:
        return await collector.collect(track=False)


def as_dict(snapshot: Snapshot, ready: Readiness) -> dict[str, Any]:
    return {
        "ready": ready.ready,
        "readiness": ready.as_dict(),
        "consumer_group": snapshot.consumer_group,
        "consumer_lag": snapshot.lag_total,
        "topics": [{"topic": t.name, "exists": t.exists, "end": t.end, "retained": t.retained, "lag": t.lag}
                   for t in snapshot.topics],
        "capture": [c.model_dump(mode="json") for c in snapshot.capture],
        "errors_open": snapshot.errors_open,
        "errors_parked": snapshot.errors_parked,
        "jobs": [j.model_dump(mode="json") for j in snapshot.jobs],
        "problems": snapshot.problems,
        "taken_at": snapshot.taken_at.isoformat(),
    }


def show(snapshot: Snapshot, ready: Readiness, console: Console) -> None:
    if ready.ready:
        console.print(f"[bold green]ready[/]  consumer lag {fmt_number(ready.consumer_lag)} "
                      f"(threshold {fmt_number(ready.max_lag)})", highlight=False)
    else:
        console.print("[bold red]not ready[/]", highlight=False)
        for why in ready.reasons:
            console.print(f"  - {why}", highlight=False, markup=False)

    services = Table("check", "state", "detail", title="readiness", title_justify="left")
    for name, ok, detail in ready.checks:
        services.add_row(name, "[green]ok[/]" if ok else "[red]not ok[/]", detail)
    console.print(services)

    capture = Table("system", "slot", "capture", "lag", "oldest unpublished", "last event", "heartbeat",
                    title="capture", title_justify="left")
    for c in snapshot.capture:
        state = ("unreachable" if c.error else "running" if c.capture_running else
                 "slot in use" if c.slot_active else "stopped")
        capture.add_row(c.system, c.slot if c.slot_exists or c.error else f"{c.slot} (missing)", state,
                        fmt_bytes(c.lag_bytes), fmt_seconds(c.lag_seconds), fmt_when(c.last_event_at),
                        fmt_ago(c.heartbeat_at))
    console.print(capture)

    behind = [t for t in snapshot.change_topics if t.lag]
    line = f"consumer group {snapshot.consumer_group}: lag {fmt_number(snapshot.lag_total)}"
    if behind:
        line += " (" + ", ".join(f"{t.name} {t.lag:,}" for t in sorted(behind, key=lambda t: -(t.lag or 0))[:5]) + ")"
    dlq = snapshot.dead_letter
    if dlq is not None and dlq.exists:
        line += f"; dead letters {dlq.retained:,}"
    console.print(line, highlight=False, markup=False)
    console.print(f"open errors: {fmt_number(snapshot.errors_open)}; parked changes: "
                  f"{fmt_number(snapshot.errors_parked)} (cdc errors, cdc parked)", highlight=False, markup=False)

    if snapshot.jobs:
        jobs = Table("job", "mapping", "kind", "status", "started", "duration", "counts", title="last jobs",
                     title_justify="left")
        now = datetime.now(UTC)
        for j in snapshot.jobs:
            counts = " ".join(f"{name} {value}" for name, value in j.counts.items() if value) or "-"
            jobs.add_row(str(j.id)[:8], j.mapping, j.kind, j.status, fmt_ago(j.started_at, now),
                         fmt_seconds(j.duration_seconds), counts)
        console.print(jobs)
    else:
        console.print("no jobs yet")
    for problem in snapshot.problems:
        console.print(f"problem: {problem}", highlight=False, markup=False, style="yellow")
