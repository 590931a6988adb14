"""The background loop: a snapshot every `interval` seconds into the history, and a wake-up for every live page
(server-sent events) waiting for the next one."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from cdc.monitoring.history import History, Sample
from cdc.monitoring.model import Snapshot
from cdc.monitoring.security import reason
from cdc.monitoring.snapshot import Collector

log = structlog.get_logger(component="monitoring.sampler")


class Sampler:
    def __init__(self, collector: Collector, *, interval: float = 2.0, history_seconds: float = 600.0) -> None:
        if interval <= 0:
            raise ValueError("the sampling interval must be positive")
        self.collector = collector
        self.interval = interval
        self.history = History(max(2, int(history_seconds / interval) + 1))
        self.latest: Snapshot | None = None
        self.latest_sample: Sample | None = None
        self.version = 0
        self.closed = False
        self._changed = asyncio.Condition()
        self._sampling = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._soon: set[asyncio.Task[None]] = set()

    async def sample(self) -> Snapshot:
        """Take a snapshot now, record it and wake the waiters."""
        async with self._sampling:
            snapshot = await self.collector.collect()
            self.latest = snapshot
            self.latest_sample = self.history.add(snapshot)
            async with self._changed:
                self.version += 1
                self._changed.notify_all()
            return snapshot

    def sample_soon(self) -> None:
        """Take a snapshot in the background now (after an action), without waiting for it."""
        if self.closed:
            return

        async def once() -> None:
            try:
                await self.sample()
            except Exception as exc:  # noqa: BLE001
                log.error("sampling failed", error=self.collector.redact(reason(exc)))

        task = asyncio.create_task(once())
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def current(self) -> Snapshot:
        """The latest snapshot, taking the first one if there is none yet."""
        return self.latest if self.latest is not None else await self.sample()

    async def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait until a snapshot newer than `version` exists (True) or `timeout` passes / closing (False)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > version or self.closed),
                                       timeout)
            return self.version > version and not self.closed

    async def run(self) -> None:
        while not self.closed:
            started = time.monotonic()
            try:
                await self.sample()
            except Exception as exc:  # noqa: BLE001 - a failed sample must not end monitoring
                log.error("sampling failed", error=self.collector.redact(reason(exc)))
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="cdc-dashboard-sampler")

    async def close(self) -> None:
        """Stop sampling and release every live page waiting for a snapshot."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()
        tasks = [t for t in (self._task, *self._soon) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
