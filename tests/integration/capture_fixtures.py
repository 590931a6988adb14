"""Fixtures and helpers for the capture tests: throwaway ERP and CRM databases, per-test topic prefixes (so slots,
publications and topics never collide with other runs), a reader of topics, and `cdc capture` as a subprocess.

The `capture_env` fixture is registered for every test by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from cdc.database import quote_ident
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from schemas.change_event import ChangeEvent, decode_key

REPO = Path(__file__).resolve().parents[2]


def dsn_for(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def wait_until(condition: Callable[[], Awaitable[Any]], within: float, what: str,
                     interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; fail the test naming `what` after `within` s."""
    deadline = time.monotonic() + within
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def apply_demo_schema(dsn: str, system: str) -> None:
    try:
        from cdc.demo.setup import apply_schema
    except ImportError:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute((REPO / "cdc" / "demo" / f"{system}.sql").read_text())
        finally:
            await conn.close()
    else:
        await apply_schema(dsn, system)  # type: ignore[arg-type]


@dataclass
class CaptureEnv:
    """Throwaway databases shared by a module's tests; `settings_for` gives each test its own prefix."""

    base: Settings
    token: str
    dsns: dict[str, str]
    home: Path
    prefixes: list[str] = field(default_factory=list)

    def settings_for(self, label: str, **overrides: Any) -> Settings:
        prefix = f"cdc_test_cap_{self.token}_{label}"
        self.prefixes.append(prefix)
        return self.base.model_copy(update={
            "erp_dsn": SecretStr(self.dsns["erp"]), "crm_dsn": SecretStr(self.dsns["crm"]),
            "topic_prefix": prefix, "home": self.home, **overrides})

    async def connect(self, system: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsns[system])


@pytest.fixture(scope="module", name="capture_env")
async def capture_env_fixture(settings: Settings,
                              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CaptureEnv]:
    server = settings.dsn("erp")
    try:
        admin = await asyncpg.connect(dsn_for(server, "postgres"), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc}); start it with `cdc stack up`")
    try:
        probe = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
        await probe.start()
        await probe.close()
    except Exception as exc:  # any failure to reach the broker skips
        await admin.close()
        pytest.skip(f"Kafka not reachable ({exc}); start it with `cdc stack up`")
    token = secrets.token_hex(3)
    names = {system: f"cdc_test_cap_{token}_{system}" for system in SYSTEMS}
    env = CaptureEnv(settings, token, {s: dsn_for(server, n) for s, n in names.items()},
                     tmp_path_factory.mktemp("capture-home"))
    try:
        for system, name in names.items():
            await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
            await apply_demo_schema(env.dsns[system], system)
        yield env
    finally:
        slots = [r["slot_name"] for r in await admin.fetch(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1", f"cdc_test_cap_{token}_%")]
        for slot in slots:
            await admin.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                                "WHERE slot_name = $1 AND active_pid IS NOT NULL", slot)
            await wait_until(lambda s=slot: admin.fetchval(
                "SELECT NOT active FROM pg_replication_slots WHERE slot_name = $1", s), 10, f"slot {slot} idle")
            await admin.execute("SELECT pg_drop_replication_slot($1)", slot)
        for name in names.values():
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.close()
        await delete_topics(settings.kafka_bootstrap, [f"{p}." for p in env.prefixes])


async def delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    if not prefixes:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: dict[str, Any] | None
    event: ChangeEvent
    headers: dict[str, bytes]


class TopicReader:
    """Reads topics from the beginning, keeping every record; `until` waits for a condition on them."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records: list[Record] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest", group_id=None)
        await self._consumer.start()
        described = await wait_until(self._describe, 30, f"topics {self.topics}")
        parts = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        return self

    async def _describe(self) -> list[dict[str, Any]] | None:
        """The topics with their partitions, once all of them exist (None meanwhile, also while the broker is not
        ready to answer: just after a restart or a freeze, its first answers may be errors)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            described = await admin.describe_topics(self.topics)
        except KafkaError:
            return None
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        ready = all(t["error_code"] == 0 and t["partitions"] for t in described)
        return described if ready and len(described) == len(self.topics) else None

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> list[Record]:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=200, max_records=50_000)
        new = []
        for tp, messages in batch.items():
            for m in messages:
                event = ChangeEvent.from_wire(m.value)
                assert event is not None
                new.append(Record(tp.topic, tp.partition, m.offset, decode_key(m.key), event, dict(m.headers)))
        self.records += new
        return new

    async def until(self, condition: Callable[[list[Record]], bool], within: float,
                    what: str) -> list[Record]:
        async def check() -> bool:
            await self.poll()
            return condition(self.records)

        await wait_until(check, within, what, interval=0)
        return self.records

    async def read_to_end(self, within: float = 30) -> list[Record]:
        """Every record on the topics now: reads until each partition's position reaches its end offset
        (a condition on one record says nothing about partitions not fetched yet)."""
        assert self._consumer is not None
        parts = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(parts)

        async def caught_up() -> bool:
            await self.poll()
            positions = {tp: await self._consumer.position(tp) for tp in parts}  # type: ignore[union-attr]
            return all(positions[tp] >= ends[tp] for tp in parts)

        await wait_until(caught_up, within, f"the end of {self.topics}", interval=0)
        return self.records

    async def count(self) -> int:
        """Records on the topics (sum of end offsets; topics of a test are written only by that test)."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        return sum(ends.values())


class CaptureProcess:
    """`python -m cdc capture` in a subprocess, configured by environment variables like a deployment."""

    def __init__(self, settings: Settings, systems: str = "all", log_path: Path | None = None) -> None:
        self.settings = settings
        self.systems = systems
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)  # keeps CDC_* addresses (ports, DSNs) of the stack under test
        env.update({
            "CDC_ERP_DSN": s.dsn("erp"), "CDC_CRM_DSN": s.dsn("crm"), "CDC_STATE_DSN": s.dsn("state"),
            "CDC_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CDC_TOPIC_PREFIX": s.topic_prefix, "CDC_HOME": str(s.home),
            "CDC_CAPTURE_BATCH_CHANGES": str(s.capture_batch_changes),
            "CDC_HEARTBEAT_INTERVAL": str(s.heartbeat_interval), "CDC_LOG_FORMAT": "json",
            "CDC_LOG_LEVEL": s.log_level, "PYTHONUNBUFFERED": "1",
        })
        return env

    def start(self) -> CaptureProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "cdc", "capture", "--system", self.systems],
                                     env=self.env(), cwd=REPO, stdout=out, stderr=out)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        """VmHWM: the highest resident set size the process has had."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc status")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
