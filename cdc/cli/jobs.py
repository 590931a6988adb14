"""`cdc` commands on the state database: `db migrate`, `jobs`, `job`, `errors [purge]`, `parked`, `retry`, `skip`,
`resolve`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import typer
from rich.table import Table

from cdc import terminal
from cdc.cli import app, fail, settings, usage
from cdc.database import connect, describe
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.plan import select
from cdc.pair import other
from cdc.state import job_errors, jobs, migrate

T = TypeVar("T")

db_app = typer.Typer(no_args_is_help=True, help="The state database.")
app.add_typer(db_app, name="db")
errors_app = typer.Typer(invoke_without_command=True, help="Job errors: list (the default), purge.")
app.add_typer(errors_app, name="errors")

_DURATION = re.compile(r"([0-9]+)\s*([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
MAX_AGE = timedelta(days=36500)
MAX_LIST = 100_000
"""The most jobs or errors a listing shows."""

IdArgument = typer.Argument(..., metavar="ID", min=1, max=job_errors.MAX_ID, help="The error's id.")


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '45s', '2w' or a sum such as '1d12h'; at most 100 years."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or _DURATION.sub("", compact).strip():
        raise ValueError(f"{text[:40]!r} is not a duration such as 7d, 12h, 30m or 1d12h")
    total = timedelta()
    for amount, unit in parts:
        if len(amount) > 12 or (total := total + timedelta(**{_UNITS[unit]: int(amount)})) > MAX_AGE:
            raise ValueError(f"{text[:40]!r} is more than {MAX_AGE.days // 365} years")
    return total


def _known_mapping(name: str | None) -> None:
    """An unknown --mapping is a usage error (exit 2), as for the sync commands, not an empty listing."""
    if name is not None:
        select(load_mapping_file(settings().mapping_file), name)


def _state(work: Callable[[asyncpg.Connection], Awaitable[T]], *, require_current: bool = True) -> T:
    """Run `work` on one connection to the state database (unreachable: one line, exit 3)."""

    async def run() -> T:
        conn = await connect(settings().dsn("state"), role="state")
        try:
            if require_current:
                await migrate.require_current(conn)
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=_plain, indent=2))


def _job_json(job: jobs.Job) -> dict[str, Any]:
    data = dataclasses.asdict(job)
    data.update(data.pop("counts"))
    return data


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Local time, to the second."""
    return "" if value is None else value.astimezone().strftime(fmt)


_SHORT = {"inserted": "ins", "modified": "mod", "deleted": "del", "unchanged": "same", "skipped": "skip",
          "failed": "fail", "coupled": "coup", "uncoupled": "uncoup"}


# ---------------------------------------------------------------- db

@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the `cdc` schema of the state database (safe to run concurrently)."""
    dsn = settings().dsn("state")

    async def work(conn: asyncpg.Connection) -> tuple[list[int], list[int]]:
        return await migrate.migrate(conn), await migrate.applied(conn)

    applied, present = _state(work, require_current=False)
    names = {m.version: m.name for m in migrate.available()}
    for version in applied:
        typer.echo(f"applied {version:04d}_{names[version]}")
    typer.echo(f"state database {describe(dsn)} is at version {max(present, default=0):04d}")


# ---------------------------------------------------------------- jobs

@app.command("jobs")
def list_jobs(
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Only this mapping."),
    kind: str | None = typer.Option(None, "--kind", "-k", help=f"One of {', '.join(jobs.KINDS)}."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=MAX_LIST, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Recent jobs with their counters."""
    if kind is not None and kind not in jobs.KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(jobs.KINDS)}", param_hint="--kind")
    _known_mapping(mapping)
    found = _state(lambda conn: jobs.list_jobs(conn, mapping, kind, limit))  # type: ignore[arg-type]
    if as_json:
        _print_json([_job_json(j) for j in found])
        return
    if not found:
        typer.echo("no jobs")
        return
    table = Table("id", "mapping", "kind", "dir", "status", "started", "counts", "message")
    for column in (table.columns[0], table.columns[5]):
        column.no_wrap = True
    for j in found:
        counts = " ".join(f"{_SHORT[name]} {value}" for name, value in j.counts.as_dict().items() if value)
        table.add_row(str(j.id)[:8], j.mapping, j.kind, j.direction or "", j.status,
                      _when(j.started_at, "%m-%d %H:%M:%S"), counts or "-", j.message or "")
    terminal.console().print(table)


@app.command("job")
def show_job(
    job_id: str = typer.Argument(..., metavar="ID", help="A job id or its first characters."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One job: its counters and its errors."""
    try:
        jobs.id_range(job_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ID") from None

    async def work(conn: asyncpg.Connection) -> tuple[jobs.Job | None, list[job_errors.JobError]]:
        job = await jobs.get_job(conn, job_id)
        if job is None:
            return None, []
        return job, await job_errors.list_errors(conn, limit=1000, job_id=job.id)

    job, errors = _state(work)
    if job is None:
        fail(f"no job matches {job_id!r}")
        return
    if as_json:
        _print_json({**_job_json(job), "errors": [dataclasses.asdict(e) for e in errors]})
        return
    console = terminal.console()
    about = Table.grid(padding=(0, 2))
    for label, value in (("id", str(job.id)), ("mapping", job.mapping), ("kind", job.kind),
                         ("direction", job.direction or ""), ("status", job.status),
                         ("started", _when(job.started_at)), ("finished", _when(job.finished_at)),
                         ("window", _when(job.window_start)), ("run", str(job.run_id or "")),
                         ("message", job.message or "")):
        about.add_row(label, value)
    console.print(about)
    counters = Table(*jobs.COUNTERS)
    counters.add_row(*(str(v) for v in job.counts.as_dict().values()))
    console.print(counters)
    if errors:
        console.print(_errors_table(errors))
    else:
        console.print("no errors")


# ---------------------------------------------------------------- errors

def _errors_table(errors: list[job_errors.JobError]) -> Table:
    table = Table("id", "mapping", "source", "destination", "state", "times", "since", "last seen", "message")
    for e in errors:
        destination = f"{e.destination_system}:{e.destination_key}" if e.destination_key else ""
        state = e.state if e.kind == "failure" else f"{e.state} {e.kind}"
        table.add_row(str(e.id), e.mapping, f"{e.source_system}:{e.source_key}", destination, state,
                      str(e.occurrences), _when(e.created_at), _when(e.updated_at), e.message)
    return table


def _state_option(value: str | None) -> job_errors.State | None:
    if value is not None and value not in job_errors.STATES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(job_errors.STATES)}", param_hint="--state")
    return value  # type: ignore[return-value]


@errors_app.callback()
def list_errors(
    ctx: typer.Context,
    open_only: bool = typer.Option(False, "--open", help="Open and parked errors (the default)."),
    every: bool = typer.Option(False, "--all", help="Errors in every state, resolved, retried and ignored too."),
    state: str | None = typer.Option(None, "--state", "-s", help=f"Only this state: {', '.join(job_errors.STATES)}."),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Only this mapping."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=MAX_LIST,
                              help="At most this many, most recent first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Job errors, most recently seen first: those waiting for someone (open) or for a lookup (parked), unless
    --all or --state says otherwise. States: open, parked, resolved (its record synced since), retried, ignored."""
    if ctx.invoked_subcommand is not None:
        return
    _known_mapping(mapping)
    chosen = _state_option(state)
    if sum((open_only, every, chosen is not None)) > 1:
        usage("--open, --all and --state exclude each other")
    waiting = chosen is None and not every
    found = _state(lambda conn: job_errors.list_errors(conn, waiting, mapping, limit, state=chosen))
    if as_json:
        _print_json([dataclasses.asdict(e) for e in found])
    elif not found:
        typer.echo(f"no {chosen} errors" if chosen else "no open errors" if waiting else "no errors")
    else:
        terminal.console().print(_errors_table(found))


@app.command("parked")
def list_parked(
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Only this mapping."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, help="At most this many, most recent first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Changes waiting for a lookup to be coupled (errors in state parked): what each waits for, since when, how
    often it was tried. The worker tries each again with backoff (up to every 5 minutes); couple the lookup
    (`cdc couple`, or sync its mapping) and it goes through at its next try."""
    found = _state(lambda conn: job_errors.list_errors(conn, mapping=mapping, limit=limit, state="parked"))
    if as_json:
        _print_json([dataclasses.asdict(e) for e in found])
        return
    if not found:
        typer.echo("no parked changes")
        return
    table = Table("id", "mapping", "record", "waiting for", "since", "tries", "next try", "changes waiting")
    for e in found:
        table.add_row(str(e.id), e.mapping, f"{e.source_system}:{e.source_key}", e.message, _when(e.created_at),
                      str(e.occurrences), _when(e.next_attempt_at), str(e.waiting or 0))
    terminal.console().print(table)


@errors_app.command("purge")
def purge_errors(
    older_than: str = typer.Option("7d", "--older-than", help="Age such as 7d, 12h, 30m (last seen)."),
) -> None:
    """Delete errors (any state) not seen for the given time."""
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    deleted = _state(lambda conn: job_errors.purge(conn, age))
    typer.echo(f"purged {deleted} error(s) last seen more than {older_than} ago")


@app.command("retry")
def retry(
    error_id: int | None = typer.Argument(None, metavar="ID", min=1, max=job_errors.MAX_ID,
                                          help="The error to retry."),
    all_open: bool = typer.Option(False, "--all", help="Retry every open error."),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="With --all: only this mapping."),
) -> None:
    """Retry errors: mark them retried, un-skip their records and re-queue their change events.

    Each stored event is inserted into cdc.parked_events, due now.
    The worker's parked-event retrier picks it up and applies it (the worker must be running).
    An error without a stored event only has its record un-skipped: its next change syncs it.
    """
    if (error_id is None) == (not all_open):
        usage("give an error ID or --all")
    if mapping is not None and not all_open:
        usage("--mapping goes with --all")
    _known_mapping(mapping)

    async def work(conn: asyncpg.Connection) -> list[job_errors.JobError]:
        async with conn.transaction():
            ids = [error_id] if error_id is not None else await job_errors.open_ids(conn, mapping)
            return await job_errors.retry(conn, ids)  # type: ignore[arg-type]

    retried = _state(work)
    if error_id is not None and not retried:
        fail(f"no error #{error_id}")
    if not retried:
        typer.echo("no open errors to retry")
        return
    requeued = sum(1 for e in retried if e.event is not None)
    typer.echo(f"retried {len(retried)} error(s); {requeued} event(s) queued for the worker")
    if requeued < len(retried):
        typer.echo(f"{len(retried) - requeued} error(s) had no stored event: "
                   "their records sync on their next change")


@app.command("skip")
def skip(error_id: int = IdArgument) -> None:
    """Ignore an error and mark its record's coupling skipped (until `cdc retry`)."""

    async def work(conn: asyncpg.Connection) -> tuple[job_errors.JobError, bool] | None:
        async with conn.transaction():
            return await job_errors.skip(conn, error_id)

    outcome = _state(work)
    if outcome is None:
        fail(f"no error #{error_id}")
        return
    error, coupled = outcome
    record = f"{error.mapping} {error.source_system.upper()} record {error.source_key!r}"
    typer.echo(f"error #{error.id} ignored; {record} "
               + ("is skipped until `cdc retry`" if coupled else "is not coupled, nothing to skip"))


@app.command("resolve")
def resolve(
    error_id: int = typer.Argument(..., metavar="ID", help="The conflict's error id (cdc errors)."),
    keep: str = typer.Option(..., "--keep", help="Whose values win: erp or crm."),
    wait: float = typer.Option(60.0, "--wait", min=0, help="Seconds to wait for a worker to apply it (0: queue "
                                                            "and return)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resolve a conflict: keep one side's values, write them to the other side, and close the error.

    A worker applies it with its own decision (locks, fingerprints, exactly once); without a worker in the consumer
    group, one runs in this process meanwhile. Exit 1 when it was not resolved (the error says why) or no worker
    applied it within --wait.
    """
    if keep not in ("erp", "crm"):
        raise typer.BadParameter(f"{keep!r} is not erp or crm", param_hint="--keep")
    from cdc.mapping.load import load_mapping_file
    from cdc.orchestrator.resolution import resolve as resolve_conflict
    from consumers import Worker

    s = settings()
    try:
        result = asyncio.run(resolve_conflict(s, load_mapping_file(s.mapping_file), error_id, keep,  # type: ignore[arg-type]
                                              wait=wait, worker=Worker))
    except job_errors.NotResolvable as exc:
        fail(str(exc))
        return
    if result is None:
        fail(f"no error #{error_id}")
        return
    if as_json:
        _print_json({"error": dataclasses.asdict(result.error), "keep": result.keep, "outcome": result.outcome,
                     "now": dataclasses.asdict(result.now) if result.now else None,
                     "worker_started": result.worker_started})
    else:
        error = result.error
        pair = f"{error.mapping} ERP {error.source_key} ↔ CRM {error.destination_key}"
        if result.outcome == "resolved":
            target = other(result.keep).upper()
            typer.echo(f"error #{error.id} resolved: the {target} now holds the {keep.upper()}'s values ({pair})")
        elif result.outcome == "failed":
            why = result.now.message if result.now is not None else "see cdc errors"
            typer.echo(f"error #{error.id} not resolved: {why}")
        elif wait == 0:
            typer.echo(f"error #{error.id}: resolution queued for the worker")
        else:
            typer.echo(f"error #{error.id}: resolution queued; no worker applied it within {wait:g} s "
                       "(is a worker running? `cdc status`)")
        if result.worker_started:
            typer.echo("applied by a worker started in this process (no `cdc worker` was running)")
    if result.outcome != "resolved" and not (result.outcome == "queued" and wait == 0):
        raise typer.Exit(1)
