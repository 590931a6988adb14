"""`cdc run`: capture, worker(s) and dashboard as supervised child processes.

A child that exits unexpectedly is reported and restarted with backoff — never silently dead. SIGTERM / Ctrl-C
is forwarded to every child (each drains its in-flight batch and commits), and the supervisor waits a bounded time
before killing what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from cdc.backoff import Backoff

log = structlog.get_logger()

HEALTHY_AFTER = 60.0


@dataclass
class Component:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    failures: int = 0
    last_exit: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=lambda: Backoff(first=1.0, most=30.0))


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
                 metrics_dir: Path | None = None, log_dir: Path | None = None) -> None:
        self.parts = parts
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

    async def _start(self, part: Component) -> None:
        output = None
        if self.log_dir is not None:
            output = (self.log_dir / f"{part.name}.log").open("ab")
        part.process = await asyncio.create_subprocess_exec(*part.argv, env={**self.env, **part.env},
                                                            stdin=asyncio.subprocess.DEVNULL, stdout=output,
                                                            stderr=asyncio.subprocess.STDOUT if output else None)
        if output is not None:
            output.close()
        part.started_at = time.monotonic()
        log.info("component started", component=part.name, pid=part.process.pid, restarts=part.restarts)

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
            part.last_exit = code
            healthy_for = time.monotonic() - part.started_at
            part.failures = 0 if healthy_for > HEALTHY_AFTER else part.failures + 1
            if part.failures == 0:
                part.backoff.reset()
            delay = part.backoff.next()
            log.error("component exited; restarting", component=part.name, exit_code=code,
                      restart_in=round(delay, 2))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            part.restarts += 1
            await self._start(part)

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
