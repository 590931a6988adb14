"""`cdc full-sync`, `cdc sync-modified`, `cdc sync --mapping M [--full]` and `cdc verify`.

Thin: options, confirmations and output live here; what the commands do lives in `cdc.orchestrator`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from cdc import terminal
from cdc.cli import app, progress, render, settings, usage
from cdc.mapping.load import load_mapping_file
from cdc.mapping.model import MappingFile
from cdc.orchestrator import dry_run as dry
from cdc.orchestrator import full_sync as full
from cdc.orchestrator import verify
from cdc.orchestrator.modified import sync_modified
from cdc.orchestrator.plan import select
from cdc.orchestrator.progress import job_json, plain
from cdc.orchestrator.runner import RunResult

T = TypeVar("T")

MappingOption = typer.Option(None, "--mapping", "-m", help="Only this mapping (default: all, in dependency order).")
JsonOption = typer.Option(False, "--json", help="Print one JSON document instead of tables.")
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation before starting.")
DryRunOption = typer.Option(False, "--dry-run", help="Only predict what would happen; write nothing.")
KeepOption = typer.Option(
    None, "--keep-creating/--restore",
    help="After the sync: keep 'only coupled' cleared (later changes create partners) or restore the previous "
         "settings. Without either, a terminal asks; otherwise the settings are restored.")


def _mapping_file() -> MappingFile:
    return load_mapping_file(settings().mapping_file)


def run_stoppable(work: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run `work(stop)`; Ctrl-C or SIGTERM set `stop` so the work ends cleanly (a second Ctrl-C aborts)."""

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def request() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request)
        try:
            return await work(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        typer.echo("aborted: the running jobs are marked cancelled", err=True)
        raise typer.Exit(130) from None


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm_start(what: str, yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        usage(f"{what} creates and updates records in both systems: pass --yes to run it without a terminal")
    typer.confirm(f"{what}: create and couple records in both systems for every uncoupled in-filter record?",
                  abort=True, err=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), indent=2))


def _report_run(result: RunResult, *, full_run: bool, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    resume = result.resume_commands(full_run) if result.status != "succeeded" else []
    if as_json:
        _print_json({"run_id": result.run_id, "kind": result.kind, "status": result.status,
                     "worker": result.worker, "mappings": result.mappings, "completed": result.completed,
                     "remaining": result.remaining, "resume": resume,
                     "jobs": [job_json(job) for job in result.jobs], **(extra or {})})
        return
    console = terminal.console()
    console.print(render.jobs_table(result.jobs, title=f"{result.kind} run {str(result.run_id)[:8]}: "
                                                         f"{result.status}"))
    if result.worker == "in-process":
        console.print("the replays were applied by a worker started in this process (no `cdc worker` was running)")
    if resume:
        console.print("stopped before the end; to sync the rest, run:")
        for command in resume:
            console.print(f"  {command}")
    failed = sum(job.counts.failed for job in result.jobs)
    if failed:
        console.print(f"{failed:,} record(s) failed: see `cdc errors`")


def _exit_for(result: RunResult) -> None:
    if result.status == "cancelled":
        raise typer.Exit(130)


def _full(*, only: str | None, manual: bool, yes: bool, dry_run: bool, keep: bool | None, as_json: bool,
          what: str) -> None:
    mapping_file = _mapping_file()
    if dry_run:
        report = run_stoppable(lambda stop: dry.dry_run(settings(), mapping_file, only=only, stop=stop))
        _print_json(report.as_json()) if as_json else render.dry_run_report(report, terminal.console())
        return
    select(mapping_file, only)  # an unknown --mapping fails before the question
    _confirm_start(what, yes)
    from consumers import Worker  # the in-process worker, if the group has none (loads the Kafka client)

    reporter = progress.reporter(as_json)
    try:
        result = run_stoppable(lambda stop: full.full_sync(settings(), mapping_file, stop=stop, reporter=reporter,
                                                           only=only, manual=manual, worker=Worker))
    finally:
        reporter.close()
    kept: bool | None = None
    if result.status == "succeeded":
        question = ("Keep 'only coupled' cleared for " + ", ".join(result.mappings)
                    + " (later changes of uncoupled records create partners)?")
        kept = full.keep_creating_choice(keep, _interactive(),
                                         lambda: typer.confirm(question, default=False, err=True))
        if kept:
            asyncio.run(full.keep_creating(settings(), result.mappings))
    only_coupled_after = {name: (False if kept else value) for name, value in result.only_coupled_before.items()}
    _report_run(result, full_run=True, as_json=as_json, extra={
        "kept_creating": bool(kept), "sync_only_coupled_before": result.only_coupled_before,
        "sync_only_coupled_after": only_coupled_after})
    if not as_json:
        terminal.console().print("'only coupled' cleared for good on " + ", ".join(result.mappings) if kept
                        else "'only coupled' settings left as they were")
    _exit_for(result)


@app.command("full-sync")
def full_sync_command(
    yes: bool = YesOption,
    dry_run: bool = DryRunOption,
    keep: bool | None = KeepOption,
    as_json: bool = JsonOption,
    mapping: str | None = MappingOption,
) -> None:
    """Replay every in-filter record of every mapping (dependency order), creating and coupling partners."""
    _full(only=mapping, manual=False, yes=yes, dry_run=dry_run, keep=keep, as_json=as_json, what="full sync")


@app.command("sync-modified")
def sync_modified_command(mapping: str | None = MappingOption, as_json: bool = JsonOption) -> None:
    """Replay the records modified since each mapping's last sync (everything the first time)."""
    _modified(mapping, manual=False, as_json=as_json)


def _modified(only: str | None, *, manual: bool, as_json: bool) -> None:
    mapping_file = _mapping_file()
    select(mapping_file, only)
    from consumers import Worker  # the in-process worker, if the group has none (loads the Kafka client)

    reporter = progress.reporter(as_json)
    try:
        result = run_stoppable(lambda stop: sync_modified(settings(), mapping_file, stop=stop, reporter=reporter,
                                                          only=only, manual=manual, worker=Worker))
    finally:
        reporter.close()
    _report_run(result, full_run=False, as_json=as_json)
    _exit_for(result)


@app.command("sync")
def sync_command(
    mapping: str = typer.Option(..., "--mapping", "-m", help="The mapping to synchronize."),
    full_run: bool = typer.Option(False, "--full", help="Every in-filter record, creating and coupling partners "
                                                        "(like full-sync, for this mapping)."),
    yes: bool = YesOption,
    dry_run: bool = DryRunOption,
    keep: bool | None = KeepOption,
    as_json: bool = JsonOption,
) -> None:
    """Synchronize one mapping: modified records (default) or all of them (--full)."""
    if full_run or dry_run:
        _full(only=mapping, manual=True, yes=yes, dry_run=dry_run, keep=keep, as_json=as_json,
              what=f"full sync of {mapping}")
        return
    _modified(mapping, manual=True, as_json=as_json)


@app.command("verify")
def verify_command(mapping: str | None = MappingOption, as_json: bool = JsonOption) -> None:
    """Compare both systems through the couplings; exit code 1 when anything diverges."""
    mapping_file = _mapping_file()
    select(mapping_file, mapping)
    report = run_stoppable(lambda stop: verify.verify(settings(), mapping_file, only=mapping, stop=stop))
    if as_json:
        _print_json(report.as_json())
    else:
        render.verify_report(report, terminal.console())
    if report.diverges:
        raise typer.Exit(1)
