"""`cdc couple`, `cdc uncouple` and `cdc match-couple`: couplings by hand and by match (logic in
`cdc.orchestrator.coupling`)."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from cdc import terminal
from cdc.cli import app, progress, render, settings, usage
from cdc.cli.sync import JsonOption, _print_json, run_stoppable
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator import coupling

MappingRequired = typer.Option(..., "--mapping", "-m", help="The mapping whose records are (un)coupled.")


@app.command("couple")
def couple_command(
    erp_key: str = typer.Argument(..., metavar="ERP_KEY", help="Key of the ERP record."),
    crm_key: str = typer.Argument(..., metavar="CRM_KEY", help="Key of the CRM record."),
    mapping: str = MappingRequired,
) -> None:
    """Couple an ERP record with a CRM record (both must exist; neither may be coupled already)."""
    mapping_file = load_mapping_file(settings().mapping_file)
    job = asyncio.run(coupling.couple(settings(), mapping_file, mapping, erp_key, crm_key))
    typer.echo(f"{job.mapping}: {job.message} (job {str(job.id)[:8]})")


@app.command("uncouple")
def uncouple_command(
    mapping: str = MappingRequired,
    erp_key: str | None = typer.Option(None, "--erp", metavar="KEY", help="Uncouple this ERP record."),
    crm_key: str | None = typer.Option(None, "--crm", metavar="KEY", help="Uncouple this CRM record."),
    everything: bool = typer.Option(False, "--all", help="Remove every coupling of the mapping."),
) -> None:
    """Remove the coupling of one record, or all couplings of a mapping (the records stay as they are)."""
    if sum((erp_key is not None, crm_key is not None, everything)) != 1:
        usage("give exactly one of --erp KEY, --crm KEY, --all")
    mapping_file = load_mapping_file(settings().mapping_file)
    job = asyncio.run(coupling.uncouple(settings(), mapping_file, mapping, erp_key=erp_key, crm_key=crm_key,
                                        everything=everything))
    typer.echo(f"{job.mapping}: {job.message} (job {str(job.id)[:8]})")


@app.command("match-couple")
def match_couple_command(
    mapping: str = MappingRequired,
    create_missing: bool = typer.Option(False, "--create-missing",
                                        help="Replay the records without a match so the worker creates their "
                                             "partners (where the mapping's direction allows)."),
    as_json: bool = JsonOption,
) -> None:
    """Couple uncoupled records whose match fields agree, one to one; list ambiguous and unmatched records."""
    from consumers import Worker  # the in-process worker for --create-missing, if the group has none

    mapping_file = load_mapping_file(settings().mapping_file)
    reporter = progress.reporter(as_json)
    try:
        report = run_stoppable(lambda stop: coupling.match_couple(settings(), mapping_file, mapping,
                                                                  create_missing=create_missing, stop=stop,
                                                                  reporter=reporter, worker=Worker))
    finally:
        reporter.close()
    if as_json:
        _print_json(report.as_json())
    else:
        _print(report)
    if report.cancelled:
        raise typer.Exit(130)


def _print(report: coupling.MatchReport, limit: int = 50) -> None:
    console = terminal.console()
    creatable = sum(1 for m in report.missing if m.creatable)
    console.print(f"{report.mapping}: coupled {len(report.coupled):,} pair(s) by match; "
                  f"{len(report.ambiguous):,} ambiguous; {len(report.missing):,} without a match "
                  f"({creatable:,} could be created)")
    if report.ambiguous:
        table = Table("side", "record", "matches", title="ambiguous: couple by hand (cdc couple)")
        for a in report.ambiguous[:limit]:
            table.add_row(a.system.upper(), a.key, ", ".join(a.candidates[:5]))
        console.print(table)
    if report.missing:
        table = Table("side", "record", "can be created", title="without a match")
        for m in report.missing[:limit]:
            table.add_row(m.system.upper(), m.key, "yes" if m.creatable else "no (direction)")
        console.print(table)
    for items, what in ((report.ambiguous, "ambiguous"), (report.missing, "unmatched")):
        if len(items) > limit:
            console.print(f"... and {len(items) - limit:,} more {what} records (--json lists all)")
    if report.replayed:
        console.print(f"replayed {report.replayed:,} record(s) with creation allowed"
                      + (" (applied by a worker started in this process)" if report.worker == "in-process" else ""))
    if report.job is not None:
        console.print(render.jobs_table([report.job]))
