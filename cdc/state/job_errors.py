"""Job errors: one row per failing record and message, counted while it stays open, with the event to retry.

`retry` and `skip` are the error page's actions; they also touch the record's coupling and the parked events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg

from cdc.settings import System
from cdc.state import couplings, parking, queries
from cdc.state.queries import jsonb_in, jsonb_out, rows_affected

_Q = queries.load("job_errors")

MAX_ID = 2**63 - 1
"""Error ids are bigserial: an id above this names no error (and PostgreSQL refuses it as a parameter)."""

State = Literal["open", "parked", "resolved", "retried", "ignored"]
STATES: tuple[State, ...] = ("open", "parked", "resolved", "retried", "ignored")
"""open: failed, waits for someone; parked: a change the worker retries by itself (waiting for a lookup, or for a
delete the destination still refuses); resolved: its record synced cleanly since; retried / ignored: an operator's
`cdc retry` / `cdc skip`."""


@dataclass(frozen=True)
class JobError:
    id: int
    job_id: UUID | None
    mapping: str
    source_system: System
    source_key: str
    destination_system: System | None
    destination_key: str | None
    message: str
    detail: str | None
    event: dict[str, Any] | None
    state: State
    occurrences: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> JobError:
        data = dict(row)
        data["event"] = jsonb_out(data["event"])
        return cls(**data)


async def record_error(conn: asyncpg.Connection, job_id: UUID | None, mapping: str, source_system: System,
                       source_key: str, destination_system: System | None, destination_key: str | None,
                       message: str, detail: str | None = None,
                       event: dict[str, Any] | None = None, state: State = "open") -> JobError:
    """Record a failure (or, `state` parked, a change waiting); the same message for the same record while still
    open or parked adds an occurrence."""
    row = await conn.fetchrow(_Q.record, job_id, mapping, source_system, source_key, destination_system,
                              destination_key, message, detail, jsonb_in(event), state)
    return JobError.from_row(row)


async def close(conn: asyncpg.Connection, mapping: str, system: System, keys: list[str],
                states: tuple[State, ...] = ("open", "parked")) -> int:
    """Settle the errors of these records in `states`: they synced since. How many closed."""
    if not keys or not await conn.fetchval(_Q.any_unsettled, mapping, system):
        return 0
    return rows_affected(await conn.execute(_Q.close, mapping, system, list(keys), list(states)))


async def list_errors(conn: asyncpg.Connection, open_only: bool = False, mapping: str | None = None,
                      limit: int = 100, *, job_id: UUID | None = None) -> list[JobError]:
    """The most recently seen errors first."""
    rows = await conn.fetch(_Q.list, open_only, mapping, job_id, limit)
    return [JobError.from_row(row) for row in rows]


async def get_error(conn: asyncpg.Connection, id: int) -> JobError | None:
    row = await conn.fetchrow(_Q.get, id)
    return None if row is None else JobError.from_row(row)


async def mark(conn: asyncpg.Connection, ids: list[int], state: State) -> list[JobError]:
    """Set the state of these errors; the errors that exist, as updated."""
    if state not in STATES:
        raise ValueError(f"an error's state is one of {STATES}, not {state!r}")
    return [JobError.from_row(row) for row in await conn.fetch(_Q.mark, list(ids), state)]


async def purge(conn: asyncpg.Connection, older_than: timedelta) -> int:
    """Delete errors of any state not seen for `older_than`; how many went."""
    return rows_affected(await conn.execute(_Q.purge, older_than))


async def open_count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(_Q.open_count)


async def open_ids(conn: asyncpg.Connection, mapping: str | None = None) -> list[int]:
    return [row["id"] for row in await conn.fetch(_Q.open_ids, mapping)]


async def retry(conn: asyncpg.Connection, ids: list[int]) -> list[JobError]:
    """Retry these errors: mark them retried, un-skip their records' couplings and re-queue their events.

    Each stored event goes to `cdc.parked_events`, due now: the worker's parked-event retrier picks it up.
    An error without an event only has its coupling un-skipped, so the record's next change syncs it. Call
    inside a transaction so the three steps happen together. Returns the errors that exist.
    """
    errors = await mark(conn, ids, "retried")
    by_record: dict[tuple[str, System], list[str]] = defaultdict(list)
    for error in errors:
        by_record[(error.mapping, error.source_system)].append(error.source_key)
    for (mapping, system), keys in by_record.items():
        await couplings.clear_skipped(conn, mapping, system, keys)
    await parking.park_many(conn, [
        parking.Parked(e.mapping, e.source_system, e.source_key, e.event, f"retry of error #{e.id}")
        for e in errors if e.event is not None
    ], delay=timedelta(0))
    return errors


async def skip(conn: asyncpg.Connection, id: int) -> tuple[JobError, bool] | None:
    """Ignore this error and mark its record's coupling skipped; (error, whether a coupling was skipped)."""
    errors = await mark(conn, [id], "ignored")
    if not errors:
        return None
    error = errors[0]
    return error, await couplings.skip(conn, error.mapping, error.source_system, error.source_key)
