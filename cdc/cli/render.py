"""The orchestrator's reports as the command line prints them: a run's jobs, a dry run's prediction, verify's
comparison. The orchestrator returns the reports; only this module turns them into tables and lines."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cdc.orchestrator.dry_run import CATEGORIES, DryRunReport
from cdc.orchestrator.verify import VerifyReport
from cdc.pair import other
from cdc.state.jobs import COUNTERS, Job

DETAILS_SHOWN = 20
"""Per mapping and kind, the divergences `cdc verify` lists (the counts are complete)."""


def jobs_table(found: list[Job], title: str | None = None) -> Table:
    table = Table("mapping", "direction", "status", *COUNTERS, "message", title=title)
    for job in found:
        counts = job.counts.as_dict()
        table.add_row(job.mapping, job.direction or "-", job.status, *(f"{counts[name]:,}" for name in COUNTERS),
                      job.message or "")
    return table


def dry_run_report(report: DryRunReport, console: Console, limit: int = 50) -> None:
    table = Table("mapping", "direction", *CATEGORIES, "likely duplicates", "after a match",
                  title="dry run: what a full sync would do (nothing was written)")
    for p in report.predictions:
        table.add_row(p.mapping, p.direction, *(f"{v:,}" for v in p.counts().values()), f"{len(p.duplicates):,}",
                      p.after_match)
    console.print(table)
    duplicates = report.duplicates
    if duplicates:
        listed = Table("mapping", "would create from", "near", "why", title="likely duplicates")
        for d in duplicates[:limit]:
            listed.add_row(d.mapping, f"{d.source} {d.source_key} ({d.source_value})",
                           f"{other(d.source)} {d.destination_key} ({d.destination_value})",  # type: ignore[arg-type]
                           d.reason)
        console.print(listed)
        if len(duplicates) > limit:
            console.print(f"... and {len(duplicates) - limit:,} more (--json lists all)")
    failures = [(p, f) for p in report.predictions for f in p.failures]
    if failures:
        console.print("records that would fail:")
        for p, f in failures[:limit]:
            console.print(f"  {p.mapping} {p.direction} {f['key']}: {f['error']}")
    if report.cancelled:
        console.print("stopped before the end: the prediction is partial")


def verify_report(report: VerifyReport, console: Console, limit: int = DETAILS_SHOWN) -> None:
    table = Table("mapping", "pairs checked", "differing", "missing", "duplicates", "orphans",
                  "blocked (not counted)", title="verify: ERP and CRM compared through the couplings")
    for check in report.checks:
        s = check.summary()
        table.add_row(check.mapping, f"{s['pairs']:,}", f"{s['differences']:,}", f"{s['missing']:,}",
                      f"{s['duplicates']:,}", f"{s['orphans']:,}", f"{s['blocked']:,}")
    console.print(table)
    for check in report.checks:
        for d in check.differences[:limit]:
            fields = "; ".join(f"{f.column} ({f.direction}): should be {f.expected!r}, is {f.actual!r}"
                               for f in d.fields)
            console.print(f"{check.mapping} ERP {d.erp_key} ↔ CRM {d.crm_key}: {fields}")
        for m in check.missing[:limit]:
            console.print(f"{check.mapping} {m.system.upper()} {m.key}: {m.reason}")
        for g in check.duplicates[:limit]:
            console.print(f"{check.mapping} duplicate {g.match} {g.value!r}: ERP {', '.join(g.erp_keys)} / "
                          f"CRM {', '.join(g.crm_keys)}")
        for o in check.orphans[:limit]:
            console.print(f"{check.mapping} orphan coupling ERP {o.erp_key} ↔ CRM {o.crm_key}: "
                          f"{'both records are' if o.gone == 'both' else o.gone.upper() + ' record is'} gone")
        for b in check.blocked[:limit]:
            console.print(f"{check.mapping} {b.system.upper()} {b.key} cannot sync: {b.reason}")
        for note in check.notes:
            console.print(f"{check.mapping}: {note}")
    if report.cancelled:
        console.print("stopped before the end: the comparison is partial")
    console.print("everything matches" if not report.diverges else "the systems diverge")
