"""A throwaway installation for the orchestrator's tests: its own ERP, CRM and state databases on the real
PostgreSQL, its own topic prefix and consumer group on the real broker, and a `cdc` runner (subprocesses) that
uses them. Import `OrchestratorEnv` in a test module and build a module-scoped fixture around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cdc.demo.dataset import Dataset, Shape
from cdc.demo.seed import seed
from cdc.demo.setup import apply_schema
from cdc.settings import Settings
from tests.throwaway import drop_throwaway

ROOT = Path(__file__).resolve().parents[2]


class OrchestratorEnv:
    def __init__(self, base: Settings, label: str, *, schemas: dict[str, str] | None = None,
                 mapping_file: Path | None = None) -> None:
        """`schemas`: SQL per system instead of the demo's; `mapping_file`: instead of the default one."""
        self.schemas = schemas
        self.mapping_file = mapping_file
        tag = f"{label}_{uuid.uuid4().hex[:6]}"
        self.tag = tag
        self.settings = Settings(**{**base.model_dump(), "erp_database": f"cdc_test_orch_erp_{tag}",
                                    "crm_database": f"cdc_test_orch_crm_{tag}",
                                    "state_database": f"cdc_test_orch_state_{tag}",
                                    "topic_prefix": f"orch-{tag}", "consumer_group": f"orch-{tag}",
                                    "topic_partitions": 3})
        self.processes: list[subprocess.Popen] = []

    # ------------------------------------------------------------ lifecycle

    async def create(self) -> OrchestratorEnv:
        s = self.settings
        try:
            admin = await asyncpg.connect(s.local_dsn("postgres"), timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            pytest.skip(f"PostgreSQL not reachable ({exc}); start it with `cdc stack up`")
        try:
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        if self.schemas is None:
            await apply_schema(s.dsn("erp"), "erp")
            await apply_schema(s.dsn("crm"), "crm")
        else:
            for system, sql in self.schemas.items():
                conn = await self.connect(system)
                try:
                    await conn.execute(sql)
                finally:
                    await conn.close()
        return self

    async def drop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(20)
            if process.poll() is None:
                process.kill()
        await drop_throwaway(self.settings)

    # ------------------------------------------------------------ data

    async def seed(self, *, erp: bool, crm: bool, customers: int, overlap: float = 0.3, seed_value: int = 1,
                   clear_salespeople: bool = True) -> None:
        """Demo data; `clear_salespeople` empties the ERP customers' salesperson codes (SALESPEOPLE flows
        CRM → ERP only, so an ERP salesperson without a CRM user can never be an account's owner)."""
        await seed(self.settings, erp=erp, crm=crm, customers=customers, seed=seed_value, overlap=overlap)
        if erp and clear_salespeople:
            conn = await self.connect("erp")
            try:
                await conn.execute("UPDATE customer SET salesperson_code = NULL")
            finally:
                await conn.close()

    @staticmethod
    def dataset(customers: int, overlap: float = 0.3, seed_value: int = 1) -> Dataset:
        """The data set `seed` loads, generated again (for its list of near-duplicates)."""
        data = Dataset(Shape(customers=customers, seed=seed_value, overlap=overlap))
        for _ in data.batches():
            pass
        return data

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.settings.dsn(database))  # type: ignore[arg-type]

    async def value(self, database: str, sql: str, *args: Any) -> Any:
        conn = await self.connect(database)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def rows(self, database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.connect(database)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    # ------------------------------------------------------------ the command line

    def environment(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)  # keeps CDC_* addresses (ports, DSNs) of the stack under test
        env.update({"CDC_ERP_DATABASE": s.erp_database, "CDC_CRM_DATABASE": s.crm_database,
                    "CDC_STATE_DATABASE": s.state_database, "CDC_TOPIC_PREFIX": s.topic_prefix,
                    "CDC_CONSUMER_GROUP": s.consumer_group, "CDC_TOPIC_PARTITIONS": str(s.topic_partitions),
                    "CDC_PG_PORT": str(s.pg_port), "CDC_PG_HOST": s.pg_host,
                    "CDC_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CDC_LOG_LEVEL": "warning",
                    "CDC_HEARTBEAT_INTERVAL": "2", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
        if self.mapping_file is not None:
            env["CDC_MAPPING_FILE"] = str(self.mapping_file)
        return env

    def cdc(self, *args: str, timeout: float = 300, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=self.environment(),
                              capture_output=True, text=True, timeout=timeout, input=stdin)

    def cdc_json(self, *args: str, timeout: float = 300, ok: tuple[int, ...] = (0,)) -> Any:
        done = self.cdc(*args, "--json", timeout=timeout)
        assert done.returncode in ok, f"cdc {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def start(self, *args: str) -> subprocess.Popen:
        """A long-running `cdc` command (capture, worker, a sync to interrupt), stopped at teardown."""
        process = subprocess.Popen([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=self.environment(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process


async def until(condition: Callable[[], Awaitable[Any]], *, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


def jobs_by(jobs: list[dict[str, Any]], kind: str | None = None, run_id: str | None = None
            ) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Jobs (as `cdc jobs --json` prints them) by (mapping, direction); each key must be unique."""
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for job in jobs:
        if (kind is None or job["kind"] == kind) and (run_id is None or job["run_id"] == run_id):
            key = (job["mapping"], job["direction"])
            assert key not in found, f"two jobs for {key}"
            found[key] = job
    return found


COUNTERS = ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled")


def counters(job: dict[str, Any]) -> dict[str, int]:
    return {name: job[name] for name in COUNTERS if job[name]}
