"""Who applies the replays: the workers of the consumer group, or one started in-process for the command.

If no member is in `settings.consumer_group` when a command starts, it runs a worker in the same process (same
group) until the command ends, and says so. The orchestrator does not make that worker itself: its caller (the
CLI, the demo, a benchmark) hands it a `WorkerFactory` — the engine's `consumers.Worker` fits — so the orchestrator
depends on the engine's decisions and lookups, never on its consume loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import structlog
from aiokafka.errors import for_code

from cdc.errors import CdcError
from cdc.mapping.model import MappingFile
from cdc.settings import Settings
from cdc.topics.admin import admin_client
from cdc.topics.broker import request

log = structlog.get_logger(component="orchestrator")


class RunningWorker(Protocol):
    """A consumer-group member that consumes until `stop` is set."""

    async def run(self, stop: asyncio.Event) -> None: ...


WorkerFactory = Callable[[Settings, MappingFile], RunningWorker]
"""Makes a worker for these settings and mapping file (e.g. `consumers.Worker`, handed in by the command)."""


async def group_members(settings: Settings) -> int:
    """How many members the consumer group has right now (0: no worker is running). A broker that does not serve
    groups yet (fresh, or its coordinator moving) is asked again until the deadline."""
    admin = await admin_client(settings)

    async def describe() -> list[dict[str, Any]]:
        groups = [group for response in await admin.describe_consumer_groups([settings.consumer_group])
                  for group in response.to_object()["groups"]]
        for group in groups:
            if group["error_code"]:
                raise for_code(group["error_code"])(f"group {group['group']!r}")
        return groups

    try:
        groups = await request(settings, f"cannot describe consumer group {settings.consumer_group!r}", describe)
    finally:
        await admin.close()
    return sum(len(group["members"]) for group in groups
               if group["group"] == settings.consumer_group and group["state"] not in ("Dead", "Empty"))


class WorkerHost:
    """`async with WorkerHost(...)`: an in-process worker made by `worker` when the group has none (never one when
    `worker` is None: the replays wait for the group's workers); `started` says which."""

    def __init__(self, settings: Settings, mapping_file: MappingFile, worker: WorkerFactory | None) -> None:
        self.settings = settings
        self.mapping_file = mapping_file
        self.worker = worker
        self.started = False
        self.members = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WorkerHost:
        self.members = await group_members(self.settings)
        if self.members or self.worker is None:
            return self
        worker = self.worker(self.settings, self.mapping_file)
        self._task = asyncio.create_task(worker.run(self._stop), name="in-process worker")
        self.started = True
        log.info("no worker in the consumer group: started one in this process",
                                               group=self.settings.consumer_group)
        return self

    def check(self) -> None:
        """Raise when the in-process worker has died (the replays would never be processed)."""
        task = self._task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            raise CdcError(f"the in-process worker stopped: {error or 'cancelled'}")

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), 30)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
