"""What each page shows: the template environment, its formatting filters, and one context builder per page.

A page is its template (`<page>.html`) around a live part (`live/<page>.html`). The live part is rendered from the
same context on the first request and again for every snapshot the page's event stream delivers, so the page and
its updates never disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import jinja2

from cdc.monitoring.model import ErrorRow, JobRow, Snapshot
from cdc.monitoring.records import show
from cdc.monitoring.sampler import Sampler
from cdc.monitoring.snapshot import Collector, SectionFailed, error_row, job_row
from cdc.state import job_errors, jobs

LIVE_PAGES = ("topics", "capture", "jobs", "job", "errors", "mappings")
NAV = [("topics", "Topics", "/topics"), ("capture", "Capture", "/capture"), ("jobs", "Jobs", "/jobs"),
       ("errors", "Errors", "/errors"), ("mappings", "Mappings", "/mappings"), ("record", "Record lookup", "/record")]


# ---------------------------------------------------------------- formatting

def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def fmt_seconds(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value < 10:
        return f"{value:.1f} s"
    whole = int(round(value))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def fmt_when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    return "just now" if seconds < 1 else f"{fmt_seconds(seconds)} ago"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("cdc.monitoring", "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=fmt_number, rate=fmt_rate, bytes=fmt_bytes, seconds=fmt_seconds, when=fmt_when,
                       ago=fmt_ago, value=show, iso=lambda v: v.isoformat() if v is not None else "")
    return env


# ---------------------------------------------------------------- contexts

Context = dict[str, Any]
Builder = Callable[["PageData", Mapping[str, str]], Awaitable[Context]]


class PageData:
    """What the page builders read from: the latest snapshot and, for request-time lists, the state database."""

    def __init__(self, sampler: Sampler, collector: Collector) -> None:
        self.sampler = sampler
        self.collector = collector

    async def snapshot(self) -> Snapshot:
        return await self.sampler.current()

    async def state(self, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        return await self.collector.run("state", work)

    def mapping_names(self) -> list[str]:
        mapping_file = self.collector.mapping_file
        return [m.name for m in mapping_file.mappings] if mapping_file is not None else []


async def topics_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    return {"snapshot": snapshot, "topics": snapshot.change_topics, "dead_letter": snapshot.dead_letter}


async def capture_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    return {"snapshot": snapshot, "capture": snapshot.capture}


_COUNT = re.compile(r"[0-9]{1,18}")


def _choice(value: str | None, allowed: list[str] | tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def count_param(value: str | None, default: int, most: int) -> int:
    """A count from a query string: ASCII digits only (not '²', not 5,000 of them), 1…`most`; else `default`."""
    if value is None or not _COUNT.fullmatch(value):
        return default
    return max(1, min(most, int(value)))


def id_param(value: str | None) -> str:
    """An error id from a query string (shown back to the user), or '' when it is not one."""
    return value if value is not None and _COUNT.fullmatch(value) else ""


def _limit(value: str | None, default: int = 50, most: int = 1000) -> int:
    return count_param(value, default, most)


async def jobs_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    names = data.mapping_names()
    mapping = _choice(params.get("mapping") or None, names)
    kind = _choice(params.get("kind") or None, jobs.KINDS)
    limit = _limit(params.get("limit"))
    problem = None
    rows: list[JobRow] = []
    try:
        found = await data.state(lambda conn: jobs.list_jobs(conn, mapping, kind, limit))  # type: ignore[arg-type]
        now = datetime.now(UTC)
        rows = [job_row(j, now) for j in found]
    except SectionFailed as exc:
        problem = str(exc)
    return {"snapshot": snapshot, "jobs": rows, "mappings": names, "kinds": jobs.KINDS, "counters": jobs.COUNTERS,
            "filters": {"mapping": mapping or "", "kind": kind or "", "limit": limit}, "problem": problem}


async def job_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    try:
        job_id = UUID(params.get("id", ""))
    except ValueError:
        return {"snapshot": snapshot, "job": None, "errors": [], "counters": jobs.COUNTERS, "problem": None,
                "job_id": params.get("id", "")}

    async def work(conn: asyncpg.Connection) -> tuple[JobRow | None, list[ErrorRow]]:
        job = await jobs.get_job(conn, job_id)
        if job is None:
            return None, []
        return job_row(job), [error_row(e) for e in await job_errors.list_errors(conn, limit=1000, job_id=job.id)]

    problem = None
    job, errors = None, []
    try:
        job, errors = await data.state(work)
    except SectionFailed as exc:
        problem = str(exc)
    return {"snapshot": snapshot, "job": job, "errors": errors, "counters": jobs.COUNTERS, "problem": problem,
            "job_id": str(job_id)}


async def errors_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    names = data.mapping_names()
    mapping = _choice(params.get("mapping") or None, names)

    state = _choice(params.get("state") or None, ("open", "parked"))

    async def work(conn: asyncpg.Connection) -> tuple[list[ErrorRow], dict[str, int]]:
        found = await job_errors.list_errors(conn, open_only=True, mapping=mapping, limit=500,
                                             state=state)  # type: ignore[arg-type]
        return [error_row(e) for e in found], await job_errors.counts(conn)  # type: ignore[return-value]

    problem = None
    errors: list[ErrorRow] = []
    counts: dict[str, int | None] = {"open": None, "parked": None}
    try:
        errors, found_counts = await data.state(work)
        counts.update(found_counts)
    except SectionFailed as exc:
        problem = str(exc)
    return {"snapshot": snapshot, "errors": errors, "open_count": counts["open"], "parked_count": counts["parked"],
            "mappings": names, "states": ("open", "parked"),
            "filters": {"mapping": mapping or "", "state": state or ""}, "problem": problem, "done": _done(params)}


def _done(params: Mapping[str, str]) -> str | None:
    """The outcome line after an action (composed here from codes: the URL cannot inject text)."""
    action, error = params.get("done"), id_param(params.get("error"))
    count = count_param(params.get("n"), 0, 10**9)
    ident = f"#{error}" if error else ""
    if action == "retry":
        return f"Retried error {ident}: its change is queued for the worker." if ident else (
            f"Retried {count} error(s): their changes are queued for the worker.")
    if action == "skip":
        return f"Error {ident} ignored; its record is skipped until it is retried."
    if action == "missing":
        return f"No open error {ident}." if ident else "No open errors to retry."
    if action in ("keep-erp", "keep-crm") and ident:
        kept, other_side = ("ERP", "CRM") if action == "keep-erp" else ("CRM", "ERP")
        return (f"Conflict {ident}: the {kept}'s values are queued to be written to the {other_side}; the error "
                "closes when the worker has written them.")
    if action == "unresolvable" and ident:
        return f"Error {ident} is not an open conflict: nothing to resolve."
    return None


async def mappings_page(data: PageData, params: Mapping[str, str]) -> Context:
    snapshot = await data.snapshot()
    return {"snapshot": snapshot, "mappings": snapshot.mappings}


BUILDERS: dict[str, Builder] = {
    "topics": topics_page, "capture": capture_page, "jobs": jobs_page, "job": job_page, "errors": errors_page,
    "mappings": mappings_page,
}
