"""`cdc run`: capture, worker(s) and dashboard as supervised child processes.

A child that exits unexpectedly is reported and restarted with backoff — never silently dead: 1 s after it exits,
then 2, 4, 8, 15 and 30 s while it keeps exiting within a minute of its start; after a minute of health the next
exit waits 1 s again. The delay logged (`restart_in`) is the one waited, counted from the exit, and the restart
logs how long it actually waited (`waited`). SIGTERM / Ctrl-C is forwarded to every child (each drains its
in-flight batch and commits), and the supervisor waits a bounded time before killing what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger()

BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Seconds before the 1st, 2nd, ... restart of a component that keeps exiting within HEALTHY_AFTER of its start."""
HEALTHY_AFTER = 60.0


@dataclass
class Component:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    failures: int = 0
    env: dict[str, str] = field(default_factory=dict)


def components(workers: int, dashboard: bool, capture: bool = True) -> list[Component]:
    python = [sys.executable, "-m", "cdc"]
    found = []
    if capture:
        found.append(Component("capture", [*python, "capture"]))
    found += [Component(f"worker-{n}", [*python, "worker"]) for n in range(1, workers + 1)]
    if dashboard:
        found.append(Component("dashboard", [*python, "dashboard"]))
    return found


class Supervisor:
    def __init__(self, parts: list[Component], *, drain_timeout: float = 20.0, json_logs: bool = True,
                 metrics_dir: Path | None = None, log_dir: Path | None = None,
                 backoff: tuple[float, ...] = BACKOFF, healthy_after: float = HEALTHY_AFTER) -> None:
        self.parts = parts
        self.backoff = backoff
        self.healthy_after = healthy_after
        self.log_dir = log_dir
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
        self.drain_timeout = drain_timeout
        self.env = {**os.environ, **({"CDC_LOG_FORMAT": "json"} if json_logs else {})}
        if metrics_dir is not None:
            # prometheus-client's multiprocess mode: every child writes here, the dashboard serves the merge.
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    async def _start(self, part: Component, exited_at: float | None = None) -> None:
        output = None
        if self.log_dir is not None:
            output = (self.log_dir / f"{part.name}.log").open("ab")
        part.process = await asyncio.create_subprocess_exec(*part.argv, env={**self.env, **part.env},
                                                            stdin=asyncio.subprocess.DEVNULL, stdout=output,
                                                            stderr=asyncio.subprocess.STDOUT if output else None)
        if output is not None:
            output.close()
        part.started_at = time.monotonic()
        waited = {} if exited_at is None else {"waited": round(part.started_at - exited_at, 1)}
        log.info("component started", component=part.name, pid=part.process.pid, restarts=part.restarts, **waited)

    async def run(self, stop: asyncio.Event) -> None:
        for part in self.parts:
            await self._start(part)
        watchers = {asyncio.create_task(self._watch(part, stop)): part for part in self.parts}
        await stop.wait()
        await self._shutdown()
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    async def _watch(self, part: Component, stop: asyncio.Event) -> None:
        while not stop.is_set():
            assert part.process is not None
            code = await part.process.wait()
            if stop.is_set():
                return
            exited_at = time.monotonic()
            delay = self.restart_delay(part, exited_at - part.started_at)
            log.error("component exited; restarting", component=part.name, exit_code=code, restart_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, exited_at + delay - time.monotonic()))
            if stop.is_set():
                return
            part.restarts += 1
            await self._start(part, exited_at)

    def restart_delay(self, part: Component, ran_for: float) -> float:
        """Seconds to wait before restarting `part`, which exited after running `ran_for` seconds: the first
        delay after a healthy run, the next one while it keeps failing."""
        part.failures = 1 if ran_for > self.healthy_after else part.failures + 1
        return self.backoff[min(part.failures, len(self.backoff)) - 1]

    async def _shutdown(self) -> None:
        running = [p for p in self.parts if p.process is not None and p.process.returncode is None]
        for part in running:
            with contextlib.suppress(ProcessLookupError):
                part.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + self.drain_timeout
        for part in running:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.wait_for(part.process.wait(), remaining)  # type: ignore[union-attr]
                log.info("component stopped", component=part.name, exit_code=part.process.returncode)  # type: ignore
            except TimeoutError:
                log.error("component did not stop in time; killed", component=part.name)
                with contextlib.suppress(ProcessLookupError):
                    part.process.kill()  # type: ignore[union-attr]
                await part.process.wait()  # type: ignore[union-attr]


class InThread:
    """A supervisor on an event loop of its own, in a thread, for a process that does other work in its loop (the
    demo runs a full sync there): its restarts then come when they are logged to come, however long that work
    keeps the caller's loop busy. `async with InThread(supervisor):` starts it and, on leaving, stops it."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._thread = threading.Thread(target=self._main, name="supervisor", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def supervise() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._started.set()
            await self.supervisor.run(self._stop)

        try:
            asyncio.run(supervise())
        except BaseException as exc:  # noqa: BLE001 - reported to the owner on stop
            self.error = exc
        finally:
            self._started.set()

    async def __aenter__(self) -> InThread:
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)
