"""A live sync for integration tests: throwaway ERP/CRM/state databases, real capture and a real worker running
in this process against the real broker, with a mapping file of the test's choosing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from cdc.capture.loop import run_capture
from cdc.demo.setup import apply_schema
from cdc.mapping.load import load_mapping_file
from cdc.pair import System
from cdc.settings import DEFAULT_MAPPING_FILE, Settings
from consumers.worker import Worker
from tests.throwaway import drop_throwaway

ROOT = Path(__file__).resolve().parents[2]


def mapping_file(tmp: Path, **per_mapping: dict[str, Any]) -> Path:
    """The default mapping file with some settings changed per mapping, e.g. CUSTOMER={"conflict": "merge"}."""
    spec = yaml.safe_load(DEFAULT_MAPPING_FILE.read_text())
    for m in spec["mappings"]:
        m.update(per_mapping.get(m["name"], {}))
    path = tmp / f"mappings-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


class LiveSync:
    def __init__(self, base: Settings, mapping_path: Path | None = None,
                 schemas: dict[str, str] | None = None) -> None:
        """`schemas`: SQL per system ("erp", "crm") instead of the demo's."""
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        overrides = dict(erp_database=f"cdc_test_erp_{tag}", crm_database=f"cdc_test_crm_{tag}",
                         state_database=f"cdc_test_state_{tag}", topic_prefix=f"t{tag}",
                         consumer_group=f"g{tag}", topic_partitions=3, heartbeat_interval=2.0)
        if mapping_path is not None:
            overrides["mapping_file"] = mapping_path
        self.settings = Settings(**{**base.model_dump(), **overrides})
        self.captured_systems: tuple[System, ...] = ("erp", "crm")
        self.stop = asyncio.Event()
        self.worker_stop = asyncio.Event()
        self.worker: Worker | None = None
        self.tasks: list[asyncio.Task] = []
        self.erp: asyncpg.Connection | None = None
        self.crm: asyncpg.Connection | None = None
        self.state: asyncpg.Connection | None = None
        self.schemas = schemas

    async def __aenter__(self) -> LiveSync:
        s = self.settings
        admin = await asyncpg.connect(s.local_dsn("postgres"))
        try:
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        if self.schemas is None:
            await apply_schema(s.dsn("erp"), "erp")
            await apply_schema(s.dsn("crm"), "crm")
        self.erp = await asyncpg.connect(s.dsn("erp"))
        self.crm = await asyncpg.connect(s.dsn("crm"))
        if self.schemas is not None:
            await self.erp.execute(self.schemas["erp"])
            await self.crm.execute(self.schemas["crm"])
        return self

    async def start(self, *, capture: bool = True, worker: bool = True,
                    systems: tuple[System, ...] = ("erp", "crm")) -> None:
        """Capture of `systems` (another producer may feed the other one's topics) and a worker."""
        mapping = load_mapping_file(self.settings.mapping_file)
        self.captured_systems = systems
        if capture:
            self.tasks.append(asyncio.create_task(run_capture(self.settings, systems, self.stop, mapping=mapping)))
            await self.until(self._capturing, timeout=60, what="replication slots created")
        if worker:
            await self.start_worker()
        if self.state is None:
            await self.until(self._worker_ready, timeout=30, what="state database ready")

    async def _capturing(self) -> bool:
        for conn in self._captured_connections():
            if not await conn.fetchval("SELECT count(*) FROM pg_replication_slots "
                                       "WHERE database = current_database() AND confirmed_flush_lsn IS NOT NULL"):
                return False
        return True

    async def start_worker(self) -> None:
        self.worker_stop = asyncio.Event()
        self.worker = Worker(self.settings, load_mapping_file(self.settings.mapping_file))
        self.worker_task = asyncio.create_task(self.worker.run(self.worker_stop))
        self.tasks.append(self.worker_task)
        await self.until(self._worker_ready, timeout=30, what="worker ready")

    async def stop_worker(self) -> None:
        self.worker_stop.set()
        await asyncio.wait_for(self.worker_task, 30)
        self.tasks.remove(self.worker_task)
        self.worker = None

    async def captured(self) -> None:
        """Wait until capture has published everything committed so far in both systems."""
        targets = [(conn, await conn.fetchval("SELECT pg_current_wal_lsn()")) for conn in self._captured_connections()]

        async def caught_up() -> bool:
            for conn, target in targets:
                done = await conn.fetchval("SELECT bool_and(confirmed_flush_lsn >= $1) FROM pg_replication_slots "
                                           "WHERE database = current_database()", target)
                if not done:
                    return False
            return True

        await self.until(caught_up, timeout=30, what="capture caught up")

    def _captured_connections(self) -> list[asyncpg.Connection]:
        return [conn for system, conn in (("erp", self.erp), ("crm", self.crm)) if system in self.captured_systems]

    async def _worker_ready(self) -> bool:
        for task in self.tasks:
            if task.done():
                task.result()
        if self.state is None:
            try:
                self.state = await asyncpg.connect(self.settings.dsn("state"))
            except asyncpg.PostgresError:
                return False
        try:
            return bool(await self.state.fetchval("SELECT to_regclass('cdc.tracked_offsets') IS NOT NULL")) and (
                getattr(self, "worker", None) is None or self.worker.consumer is not None and
                bool(self.worker.consumer.assignment()))
        except asyncpg.PostgresError:
            return False

    async def until(self, condition: Callable[[], Awaitable[Any]], *, timeout: float = 20,
                    what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for task in self.tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            value = await condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.1)

    async def coupling(self, mapping: str, system: str, key: str) -> asyncpg.Record | None:
        assert self.state is not None
        return await self.state.fetchrow(f"SELECT * FROM cdc.couplings WHERE mapping = $1 AND {system}_key = $2",
                                         mapping, key)

    async def counters(self, mapping: str, direction: str) -> dict[str, int]:
        assert self.state is not None
        row = await self.state.fetchrow(
            "SELECT sum(inserted) i, sum(modified) m, sum(deleted) d, sum(unchanged) u, sum(skipped) s, "
            "sum(failed) f, sum(uncoupled) uc FROM cdc.jobs WHERE mapping = $1 AND direction = $2", mapping, direction)
        return {k: int(v or 0) for k, v in dict(row).items()}

    async def cdc(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`cdc ARGS` against this sync's databases, topics, consumer group and mapping file, in a thread: the
        worker of this sync runs in this event loop meanwhile."""
        s = self.settings
        env = {**os.environ, "CDC_ERP_DATABASE": s.erp_database, "CDC_CRM_DATABASE": s.crm_database,
               "CDC_STATE_DATABASE": s.state_database, "CDC_TOPIC_PREFIX": s.topic_prefix,
               "CDC_CONSUMER_GROUP": s.consumer_group, "CDC_TOPIC_PARTITIONS": str(s.topic_partitions),
               "CDC_MAPPING_FILE": str(s.mapping_file), "CDC_LOG_LEVEL": "warning"}
        return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cdc", *args], cwd=ROOT, env=env,
                                       capture_output=True, text=True, timeout=timeout)

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        self.worker_stop.set()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 30)
        for conn in (self.erp, self.crm, self.state):
            if conn is not None:
                await conn.close()
        await drop_throwaway(self.settings)
