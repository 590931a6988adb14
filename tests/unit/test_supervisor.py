"""Issue #13, item 10: the supervisor's restart delays are the ones it logs — 1 s after a component exits, then 2,
4, 8, 15, 30 while it keeps failing — counted from the exit, also when the process it runs in keeps its own event
loop busy. The demo ran the supervisor in the loop of its full sync (and of the worker a command starts when none
has joined yet): each batch held the loop, the exit was seen and the restart made batches later, so a logged
restart_in=15 restarted after about 27 s. `InThread` gives it a loop of its own."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest
import structlog

from cdc.supervisor import BACKOFF, Component, InThread, Supervisor

pytestmark = pytest.mark.asyncio(loop_scope="session")


def failing(name: str = "flaky") -> Component:
    return Component(name, [sys.executable, "-c", "raise SystemExit(3)"])


async def restarts(events: list[dict[str, Any]], count: int, timeout: float) -> list[tuple[float, float]]:
    """(logged restart_in, measured wait) of the first `count` restarts."""
    deadline = time.monotonic() + timeout
    while True:
        logged = [e["restart_in"] for e in events if e["event"] == "component exited; restarting"]
        waited = [e["waited"] for e in events if e["event"] == "component started" and "waited" in e]
        if len(waited) >= count:
            return list(zip(logged, waited, strict=False))[:count]
        assert time.monotonic() < deadline, events
        await asyncio.sleep(0.05)


async def test_a_failing_component_is_restarted_after_the_delays_it_logs() -> None:
    assert BACKOFF == (1, 2, 4, 8, 15, 30)  # docs/operations.md
    with structlog.testing.capture_logs() as events:
        stop = asyncio.Event()
        running = asyncio.create_task(Supervisor([failing()], json_logs=False).run(stop))
        try:
            found = await restarts(events, 3, timeout=30)
        finally:
            stop.set()
            await running
    assert [logged for logged, _ in found] == [1, 2, 4]
    for logged, waited in found:
        assert logged <= waited < logged + 0.5, found


async def test_the_delays_hold_while_the_callers_loop_is_busy() -> None:
    supervisor = Supervisor([failing()], json_logs=False, backoff=(0.5,))
    with structlog.testing.capture_logs() as events:
        async with InThread(supervisor):
            started = time.monotonic()
            while time.monotonic() - started < 4:
                time.sleep(0.5)  # a full sync's batch: this loop does nothing else meanwhile
                await asyncio.sleep(0)
            found = await restarts(events, 4, timeout=30)
    assert all(logged == 0.5 and 0.5 <= waited < 0.9 for logged, waited in found), found


async def test_after_a_minute_of_health_the_delays_start_over() -> None:
    supervisor = Supervisor([], json_logs=False)
    part = failing()
    assert [supervisor.restart_delay(part, 0.2) for _ in range(7)] == [1, 2, 4, 8, 15, 30, 30]
    assert supervisor.restart_delay(part, 61.0) == 1
    assert supervisor.restart_delay(part, 3.0) == 2
