"""A stack that has never run: its own CDC_HOME and ports, so its broker is freshly formatted (it has served no
consumer group: no `__consumer_offsets` yet) and its PostgreSQL freshly initialised — what a user meets on the
first `make demo`. Ports are the test stack's plus 100; the jars the test stack gathered are shared (a link),
everything else is made from nothing, and it is all stopped and removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cdc.settings import Settings
from cdc.stack.kafka import LocalKafka

ROOT = Path(__file__).resolve().parents[1]
OFFSET = 100


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def fresh_home(base: Settings) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Settings and a `cdc` environment for a never-run stack; `cdc stack down` and removal at the end."""
    host, _, port = base.kafka_bootstrap.split(",")[0].rpartition(":")
    ports = {"CDC_PG_PORT": base.pg_port + OFFSET, "CDC_KAFKA_PORT": int(port) + OFFSET,
             "CDC_KAFKA_CONTROLLER_PORT": base.kafka_controller_port + OFFSET,
             "CDC_DASHBOARD_PORT": base.dashboard_port + OFFSET}
    taken = [f"{name}={number}" for name, number in ports.items() if not _free(number)]
    if taken:
        pytest.fail(f"ports for the fresh stack are taken: {', '.join(taken)}")
    home = Path(tempfile.mkdtemp(prefix="cdc-fresh-"))  # short: PostgreSQL's socket path has a length limit
    jars = base.home.resolve() / "kafka" / "libs"
    if (jars / ".pom-sha256").exists():
        (home / "kafka").mkdir()
        (home / "kafka" / "libs").symlink_to(jars)
    env = {**os.environ, "CDC_HOME": str(home), "CDC_PG_PORT": str(ports["CDC_PG_PORT"]),
           "CDC_KAFKA_BOOTSTRAP": f"{host or '127.0.0.1'}:{ports['CDC_KAFKA_PORT']}",
           "CDC_KAFKA_CONTROLLER_PORT": str(ports["CDC_KAFKA_CONTROLLER_PORT"]),
           "CDC_DASHBOARD_PORT": str(ports["CDC_DASHBOARD_PORT"]), "PYTHONUNBUFFERED": "1"}
    for name in ("CDC_ERP_DSN", "CDC_CRM_DSN", "CDC_STATE_DSN", "CDC_PG_PASSWORD"):
        env.pop(name, None)  # the fresh stack's own databases, with the password it generates
    settings = base.model_copy(update={"home": home, "pg_port": ports["CDC_PG_PORT"], "pg_password": None,
                                       "erp_dsn": None, "crm_dsn": None, "state_dsn": None,
                                       "kafka_bootstrap": env["CDC_KAFKA_BOOTSTRAP"],
                                       "kafka_controller_port": ports["CDC_KAFKA_CONTROLLER_PORT"],
                                       "dashboard_port": ports["CDC_DASHBOARD_PORT"]})
    try:
        yield settings, env
    finally:
        subprocess.run([sys.executable, "-m", "cdc", "stack", "down"], env=env, cwd=ROOT, capture_output=True,
                       timeout=180)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.asynccontextmanager
async def cold_broker(base: Settings) -> AsyncIterator[Settings]:
    """Only a fresh broker, started and waited for the way `cdc stack up` used to: until it answers a metadata
    request — not until it serves consumer groups. Settings that point at it (the databases stay the base's)."""
    with fresh_home(base) as (fresh, _):
        kafka = LocalKafka(fresh)
        await asyncio.to_thread(kafka.start)
        try:
            deadline = time.monotonic() + fresh.stack_timeout
            while not await kafka.answers():
                assert time.monotonic() < deadline, f"the fresh broker did not answer: see {kafka.root}"
                await asyncio.sleep(0.3)
            yield base.model_copy(update={"kafka_bootstrap": fresh.kafka_bootstrap})
        finally:
            await asyncio.to_thread(kafka.stop)
