"""Scale-out on Kafka: two workers in one consumer group share a full sync; killing one mid-run still ends clean."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdc.settings import Settings
from tests.faults.service import Service

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_two_workers_share_a_full_sync_and_survive_losing_one(settings: Settings, tmp_path: Path) -> None:
    service = Service(settings, tmp_path, partitions=4)
    await service.create()
    try:
        service.cli("demo", "seed", "--both", "--customers", "400", "--overlap", "0.3")
        service.start("capture", "capture")
        service.start("worker-a", "worker")
        service.start("worker-b", "worker")
        deadline = time.monotonic() + 60
        while not all("partitions assigned" in (tmp_path / f"{name}.log").read_text()
                      for name in ("worker-a", "worker-b")):
            assert time.monotonic() < deadline, "the workers did not join the consumer group"
            await asyncio.sleep(0.3)
        sync = subprocess.Popen([sys.executable, "-m", "cdc", "full-sync", "--yes", "--restore", "--json"],
                                env=service.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        await asyncio.sleep(4)
        service.kill("worker-b")  # mid-run: its partitions move to worker-a
        out, err = await asyncio.to_thread(sync.communicate, timeout=600)
        assert sync.returncode == 0, err[-3000:]
        assert "started one in this process" not in err, "the full sync should have used the running workers"
        await service.settle()
        verdict = service.verify()
        assert not _real_divergence(verdict), verdict
        duplicates = sum(m["counts"]["duplicates"] for m in verdict["mappings"])
        assert duplicates <= 2, f"duplicates beyond the seeded near-duplicates: {verdict}"
        assert service.alive("worker-a")
        print(f"full sync with two workers, one killed: {time.monotonic() - started:.1f} s")
    finally:
        await service.destroy()


def _real_divergence(verdict: dict) -> bool:
    """Divergence other than duplicates that the seeded data holds on purpose (near-duplicate names)."""
    counts = [mapping["counts"] for mapping in verdict["mappings"]]
    return any(c["differences"] or c["missing"] or c["orphans"] for c in counts)
