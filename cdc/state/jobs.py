"""Jobs and their counters: what a sync, coupling or replay did, and what the worker did per live window."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from cdc.errors import CdcError
from cdc.state import queries
from cdc.state.queries import rows_affected

_Q = queries.load("jobs")

Kind = Literal["live", "full", "modified", "manual", "coupling"]
Status = Literal["running", "succeeded", "failed", "cancelled"]
JobDirection = Literal["to_crm", "to_erp"]
KINDS: tuple[Kind, ...] = ("live", "full", "modified", "manual", "coupling")


class AmbiguousJobId(CdcError):
    """A job id prefix that matches more than one job."""


@dataclass(frozen=True)
class Counts:
    inserted: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    coupled: int = 0
    uncoupled: int = 0

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in COUNTERS})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, counts: Counts | Mapping[str, int]) -> Counts:
        """Counts from a mapping of counter names; an unknown name is a programming error."""
        if isinstance(counts, Counts):
            return counts
        unknown = set(counts) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown job counters {sorted(unknown)}; known: {', '.join(COUNTERS)}")
        return cls(**counts)


COUNTERS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Counts))


@dataclass(frozen=True)
class Job:
    id: UUID
    run_id: UUID | None
    mapping: str
    kind: Kind
    direction: JobDirection | None
    status: Status
    started_at: datetime
    finished_at: datetime | None
    window_start: datetime | None
    counts: Counts
    message: str | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        data = dict(row)
        counts = Counts(**{name: data.pop(name) for name in COUNTERS})
        return cls(counts=counts, **data)


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the live window holding `now`: windows are aligned on the Unix epoch."""
    if now.tzinfo is None:
        raise ValueError("live job windows need an aware datetime")
    if window_seconds <= 0:
        raise ValueError("the live job window must be at least one second")
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, tz=UTC)


def id_range(prefix: str) -> tuple[UUID, UUID]:
    """The smallest and largest UUID starting with `prefix` (hex digits, dashes ignored)."""
    digits = prefix.replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"{prefix!r} is not a job id or the start of one")
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


async def start_job(conn: asyncpg.Connection, mapping: str, kind: Kind, direction: JobDirection | None,
                    run_id: UUID | None = None, message: str | None = None) -> Job:
    if kind not in KINDS or kind == "live":
        raise ValueError(f"start_job takes one of {KINDS[1:]}; live jobs come from live_job")
    return Job.from_row(await conn.fetchrow(_Q.start, mapping, kind, direction, run_id, message))


async def live_job(conn: asyncpg.Connection, mapping: str, direction: JobDirection, now: datetime,
                   window_seconds: int) -> UUID:
    """The id of the live job of `mapping` and `direction` for the window holding `now`.

    Opening a new window closes the earlier, still running windows of the same mapping and direction.
    """
    start = window_start(now, window_seconds)
    row = await conn.fetchrow(_Q.live, mapping, direction, start, now)
    if row["inserted"]:
        await conn.execute(_Q.close_live_windows, mapping, direction, start, float(window_seconds))
    return row["id"]


async def count_live(conn: asyncpg.Connection, mapping: str, direction: JobDirection, now: datetime,
                     window_seconds: int, counts: Counts | Mapping[str, int]) -> UUID:
    """`add_counts` on the live job of the window holding `now` (`live_job`), in one statement."""
    start = window_start(now, window_seconds)
    row = await conn.fetchrow(_Q.count_live, mapping, direction, start, now, *dataclasses.astuple(Counts.of(counts)))
    if row["inserted"]:
        await conn.execute(_Q.close_live_windows, mapping, direction, start, float(window_seconds))
    return row["id"]


async def add_counts(conn: asyncpg.Connection, job_id: UUID, counts: Counts | Mapping[str, int]) -> None:
    """Add to the job's counters (increments, never overwrites)."""
    await conn.execute(_Q.add_counts, job_id, *dataclasses.astuple(Counts.of(counts)))


async def finish_job(conn: asyncpg.Connection, job_id: UUID, status: Status,
                     message: str | None = None) -> bool:
    """Finish a running job; False when it was not running (a finished job keeps its outcome)."""
    if status not in ("succeeded", "failed", "cancelled"):
        raise ValueError(f"a job finishes as succeeded, failed or cancelled, not {status!r}")
    return rows_affected(await conn.execute(_Q.finish, job_id, status, message)) > 0


async def list_jobs(conn: asyncpg.Connection, mapping: str | None = None, kind: Kind | None = None,
                    limit: int = 50) -> list[Job]:
    """The newest jobs first."""
    return [Job.from_row(row) for row in await conn.fetch(_Q.list, mapping, kind, limit)]


async def get_job(conn: asyncpg.Connection, id: UUID | str) -> Job | None:
    """The job with this id or unique id prefix; AmbiguousJobId when the prefix matches several."""
    low, high = (id, id) if isinstance(id, UUID) else id_range(id)
    rows = await conn.fetch(_Q.by_id_range, low, high)
    if len(rows) > 1:
        raise AmbiguousJobId(f"job id {id!r} matches more than one job; give more of it")
    return Job.from_row(rows[0]) if rows else None
