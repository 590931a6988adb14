"""`cdc resolve`: settle a conflict by keeping one side's values.

The resolution is queued as a parked change of the pair (`cdc.state.job_errors.resolve`) and applied by a worker
with the worker's own decision, the kept side winning the conflict: its values are written to the other side under
the same locks, intents and fingerprints as any sync, and the error closes (`resolved`) in the same transaction.
This waits for that, with a worker of the consumer group or, when there is none, one started in this process
(`cdc.orchestrator.workers.WorkerHost`, made by the `worker` the caller hands in).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from cdc import database
from cdc.mapping.model import MappingFile
from cdc.orchestrator.workers import WorkerFactory, WorkerHost
from cdc.pair import System
from cdc.settings import Settings
from cdc.state import job_errors, migrate, parking

Outcome = Literal["resolved", "failed", "queued"]


@dataclass(frozen=True)
class Resolution:
    error: job_errors.JobError
    """The conflict as it was when the resolution was queued."""
    keep: System
    outcome: Outcome
    """resolved: the kept values were written and the error closed; failed: the worker decided and the conflict
    is still open (its message says why); queued: no worker applied it within the wait."""
    now: job_errors.JobError | None
    worker_started: bool


async def resolve(settings: Settings, mapping_file: MappingFile, error_id: int, keep: System,
                  wait: float = 60.0, poll: float = 0.25, *, worker: WorkerFactory | None) -> Resolution | None:
    """Queue the resolution of conflict `error_id` and wait up to `wait` seconds for a worker to apply it. None when
    there is no such error; `job_errors.NotResolvable` when it is not an open conflict."""
    state = await database.connect(settings.dsn("state"), role="state")
    try:
        await migrate.require_current(state)
        async with state.transaction():
            queued = await job_errors.resolve(state, error_id, keep)
        if queued is None:
            return None
        error, parked_id = queued
        if wait <= 0:
            return Resolution(error, keep, "queued", error, False)
        async with WorkerHost(settings, mapping_file, worker) as host:
            deadline = time.monotonic() + wait
            while True:
                now = await job_errors.get_error(state, error_id)
                if now is not None and now.state != "open":
                    return Resolution(error, keep, "resolved", now, host.started)
                if not await parking.waiting(state, parked_id):
                    return Resolution(error, keep, "failed", now, host.started)
                host.check()
                if time.monotonic() > deadline:
                    return Resolution(error, keep, "queued", now, host.started)
                await asyncio.sleep(poll)
    finally:
        await state.close()
