"""The worker killed with SIGKILL at random points of a mixed workload: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from cdc.demo.workload import generate
from cdc.settings import Settings
from tests.faults.service import Service

pytestmark = pytest.mark.asyncio(loop_scope="session")

LONG = os.environ.get("CDC_SLOW") == "1"
CHANGES = 40_000 if LONG else 10_000
RATE = 250.0
KILLS = 100 if LONG else 20


async def test_worker_killed_at_random_points_loses_and_duplicates_nothing(settings: Settings,
                                                                          tmp_path: Path) -> None:
    service = Service(settings, tmp_path)
    await service.create()
    try:
        service.cli("demo", "seed", "--both", "--customers", "150", "--overlap", "0.3")
        service.start("capture", "capture")
        service.cli("full-sync", "--yes", "--restore")
        service.start("worker", "worker")

        load = asyncio.create_task(generate(service.settings, rate=RATE, duration=CHANGES / RATE, seed=7))
        rng = random.Random(2026)
        pause = (CHANGES / RATE) / (KILLS + 1)
        while not load.done() or service.kills < KILLS:
            await service.working("worker")  # each kill lands while the worker consumes, not while it starts
            await asyncio.sleep(rng.uniform(0.2, 2 * pause))
            service.kill("worker")
            service.start("worker", "worker")
        report = await load
        assert service.alive("capture")

        await service.settle()
        verdict = service.verify()
        assert verdict["exit_code"] == 0, service.divergences(verdict)
        assert await service.unaccounted(verdict) == [], "parked changes that verify does not report as blocked"
        assert service.kills >= KILLS
        assert report.total >= CHANGES * 0.9, f"the workload made only {report.total} changes"
    finally:
        await service.destroy()
