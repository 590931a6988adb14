"""A throwaway world for the dashboard tests on the real stack: its own PostgreSQL role (with a distinctive
password, so tests can grep for it), ERP / CRM / state databases (demo schemas, migrated state), topic prefix,
consumer group and dashboard token — all removed afterwards.

The `world` fixture is registered for every test by tests/conftest.py (`pytest_plugins`): tests take a `world`
argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from cdc.database import quote_ident
from cdc.demo.setup import apply_schema
from cdc.monitoring.kafka import KafkaOffsets
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from cdc.state import migrate
from cdc.state import offsets as tracked_offsets
from cdc.topics.admin import ensure_topics, mapped_topics

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def with_database(dsn: str, database: str, user: str | None = None, password: str | None = None) -> str:
    """`dsn` pointing at another database (and, given, as another user)."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


@dataclass
class World:
    settings: Settings
    env: dict[str, str]
    admin_dsn: str  # superuser, maintenance database
    password: str
    token: str
    databases: dict[str, str]  # role -> database name

    @property
    def secrets(self) -> list[str]:
        """What must never appear on a page or in a log line."""
        return [self.password, self.token, *(self.settings.dsn(role) for role in ("erp", "crm", "state"))]  # type: ignore[arg-type]

    def topic(self, system: str, table: str) -> str:
        return self.settings.topic(system, table)

    async def db(self, role: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        conn = await asyncpg.connect(self.settings.dsn(role))  # type: ignore[arg-type]
        try:
            return await work(conn)
        finally:
            await conn.close()

    async def admin(self, work: Callable[[asyncpg.Connection], Awaitable[T]], database: str | None = None) -> T:
        dsn = self.admin_dsn if database is None else with_database(self.admin_dsn, database)
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    async def produce(self, topic: str, count: int, partition: int = 0) -> int:
        """`count` small records to one partition; the end offset after them."""
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            last = None
            for n in range(count):
                last = await producer.send_and_wait(topic, json.dumps({"n": n}).encode(), key=str(n).encode(),
                                                    partition=partition)
            return (last.offset + 1) if last is not None else 0
        finally:
            await producer.stop()

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit `offsets` (next offset per partition) for the consumer group in Kafka."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                    group_id=self.settings.consumer_group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
            consumer.assign(list(tps))
            await consumer.commit(tps)
        finally:
            await consumer.stop()

    async def track(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Record offsets in the state database, as the worker does with each batch."""
        await self.db("state", lambda conn: tracked_offsets.store(conn, self.settings.consumer_group, offsets))

    async def catch_up(self, topics: list[str] | None = None) -> None:
        """Consume everything in `topics` (default: every change topic) and commit it, as a worker would."""
        topics = topics or [t for t in mapped_topics(self.settings, _mapping(self.settings))
                            if t != self.settings.dead_letter_topic]
        reader = KafkaOffsets(self.settings)
        try:
            reading = await reader.read(topics, None)
        finally:
            await reader.close()
        await self.commit(reading.end)

    def cdc(self, *args: str, env: Mapping[str, str] | None = None, drop: tuple[str, ...] = (),
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """`cdc ARGS` in this world; `env` adds variables, `drop` removes some."""
        merged = {k: v for k, v in {**self.env, **(env or {})}.items() if k not in drop}
        return run_cdc(list(args), merged, timeout=timeout)


def _mapping(settings: Settings):  # type: ignore[no-untyped-def]
    from cdc.mapping.load import load_mapping_file

    return load_mapping_file(settings.mapping_file)


_SHIM = ("import importlib, cdc.cli as c; "
         "c._register = lambda: [importlib.import_module('cdc.cli.' + m) for m in ('dashboard', 'jobs', 'status')]; "
         "c.main()")


def run_cdc(args: list[str], env: Mapping[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`python -m cdc ARGS`. While another command module of the tree does not import (work in progress
    elsewhere), the same `main()` runs with only the commands these tests drive registered, with a warning."""
    command = [sys.executable, "-m", "cdc", *args]
    result = subprocess.run(command, cwd=ROOT, env=dict(env), text=True, capture_output=True, timeout=timeout)
    if result.returncode != 0 and "ImportError" in result.stderr and "_register" in result.stderr:
        warnings.warn(f"`cdc` does not import as a whole ({result.stderr.strip().splitlines()[-1]}); running "
                      "`cdc " + " ".join(args) + "` with only the dashboard, jobs and status commands", stacklevel=2)
        result = subprocess.run([sys.executable, "-c", _SHIM, *args], cwd=ROOT, env=dict(env), text=True,
                                capture_output=True, timeout=timeout)
    return result


@contextlib.asynccontextmanager
async def throwaway_world(base: Settings, tmp: Path, *, token: bool = True,
                          partitions: int = 2) -> AsyncIterator[World]:
    """The world described in the module docstring (skips the test when PostgreSQL or Kafka is down)."""
    admin_dsn = with_database(base.dsn("erp"), "postgres")
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc}); start it with `cdc stack up`")
    suffix = secrets.token_hex(4)
    role = f"cdc_dash_{suffix}"
    password = f"Pw-{secrets.token_urlsafe(18)}"
    dashboard_token = f"Tk-{secrets.token_urlsafe(24)}"
    databases = {r: f"cdc_test_dash_{suffix}_{r}" for r in ("erp", "crm", "state")}
    created: list[str] = []
    role_created = False
    topics: list[str] = []
    settings: Settings | None = None
    try:
        await admin.execute(f"CREATE ROLE {quote_ident(role)} LOGIN REPLICATION PASSWORD '{password}'")
        role_created = True
        for name in databases.values():
            await admin.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(role)}")
            created.append(name)
        fields: dict[str, Any] = dict(
            pg_host=base.pg_host, pg_port=base.pg_port, pg_user=role, pg_password=SecretStr(password),
            erp_database=databases["erp"], crm_database=databases["crm"], state_database=databases["state"],
            topic_prefix=f"cdcdash{suffix}", consumer_group=f"cdc-dash-{suffix}", topic_partitions=partitions,
            home=tmp / "cdc-home", kafka_bootstrap=base.kafka_bootstrap, mapping_file=base.mapping_file,
            dashboard_token=SecretStr(dashboard_token) if token else None, log_format="json")
        env = {**os.environ, "CDC_PG_USER": role, "CDC_PG_PASSWORD": password,
               "CDC_TOPIC_PREFIX": fields["topic_prefix"], "CDC_CONSUMER_GROUP": fields["consumer_group"],
               "CDC_TOPIC_PARTITIONS": str(partitions),
               "CDC_HOME": str(fields["home"]), "CDC_LOG_FORMAT": "json", "COLUMNS": "200"}
        for r, name in databases.items():
            env[f"CDC_{r.upper()}_DATABASE"] = name
            explicit = getattr(base, f"{r}_dsn")
            if explicit is not None:  # external services: same server, our database and role
                dsn = with_database(explicit.get_secret_value(), name, role, password)
                fields[f"{r}_dsn"] = SecretStr(dsn)
                env[f"CDC_{r.upper()}_DSN"] = dsn
        if token:
            env["CDC_DASHBOARD_TOKEN"] = dashboard_token
        else:
            env.pop("CDC_DASHBOARD_TOKEN", None)
        settings = Settings(**fields)
        for system in SYSTEMS:
            await apply_schema(settings.dsn(system), system)
        conn = await asyncpg.connect(settings.dsn("state"))
        try:
            await migrate.migrate(conn)
        finally:
            await conn.close()
        topics = mapped_topics(settings, _mapping(settings))
        try:
            await ensure_topics(settings, topics, timeout=20)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"Kafka not usable ({exc}); start it with `cdc stack up`")
        yield World(settings, env, admin_dsn, password, dashboard_token, databases)
    finally:
        if topics and settings is not None:
            await _delete_topics(settings, topics)
        for name in created:
            with contextlib.suppress(Exception):
                await admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                    "WHERE database = $1 AND NOT active", name)
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        if role_created:
            await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(role)}")
        await admin.close()


async def _delete_topics(settings: Settings, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    with contextlib.suppress(Exception):
        await admin.start()
        await asyncio.wait_for(admin.delete_topics(topics), 20)
    with contextlib.suppress(Exception):
        await admin.close()


@pytest.fixture(name="world")
async def world_fixture(settings: Settings, tmp_path: Path) -> AsyncIterator[World]:
    """A fresh world per test (import `world_fixture`; tests take `world`)."""
    async with throwaway_world(settings, tmp_path) as found:
        yield found


@contextlib.asynccontextmanager
async def app_client(settings: Settings, **app_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the dashboard application (in process, no sampling loop: each request samples as
    needed); the token is sent when the settings have one."""
    from cdc.monitoring.app import create_app
    from cdc.monitoring.security import token_of

    app = create_app(settings, sample_in_background=False, **app_options)
    token = token_of(settings)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8077", headers=headers,
                                     follow_redirects=False, timeout=30) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await app.state.monitor.sampler.close()
        await app.state.monitor.collector.close()
