"""`cdc run`: capture, worker and dashboard supervised — a killed component comes back, SIGTERM stops all cleanly,
and `cdc check` tells whether the service is healthy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import pytest

from cdc.demo.setup import apply_schema
from cdc.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def children(pid: int) -> dict[str, int]:
    """The supervised processes of `pid`, by their cdc command."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == pid and b"cdc" in cmdline:
            found[cmdline[cmdline.index(b"cdc") + 1].decode()] = int(entry.name)
    return found


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_run_supervises_restarts_and_stops_cleanly(settings: Settings, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "CDC_ERP_DATABASE": f"cdc_run_erp_{tag}", "CDC_CRM_DATABASE": f"cdc_run_crm_{tag}",
           "CDC_STATE_DATABASE": f"cdc_run_state_{tag}", "CDC_TOPIC_PREFIX": f"r{tag}", "CDC_CONSUMER_GROUP": f"r{tag}",
           "CDC_DASHBOARD_PORT": "8189", "CDC_TOPIC_PARTITIONS": "2", "CDC_HOME": str(settings.home.resolve())}
    admin = await asyncpg.connect(settings.local_dsn("postgres"))
    for name in (env["CDC_ERP_DATABASE"], env["CDC_CRM_DATABASE"], env["CDC_STATE_DATABASE"]):
        await admin.execute(f'CREATE DATABASE "{name}"')
    s = settings.model_copy(update={"erp_database": env["CDC_ERP_DATABASE"], "crm_database": env["CDC_CRM_DATABASE"]})
    await apply_schema(s.dsn("erp"), "erp")
    await apply_schema(s.dsn("crm"), "crm")
    log = (tmp_path / "run.log").open("w")
    service = subprocess.Popen([sys.executable, "-m", "cdc", "run"], env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        def all_three() -> dict[str, int] | None:
            found = children(service.pid)
            return found if len(found) == 3 else None

        parts = wait_for(all_three, 60, "three components")
        assert set(parts) == {"capture", "worker", "dashboard"}

        def ready() -> bool:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8189/healthz", timeout=2) as response:
                    return json.load(response)["status"] == "ok"
            except OSError:
                return False

        wait_for(ready, 60, "the dashboard")
        os.kill(parts["worker"], signal.SIGKILL)
        def worker_back() -> dict[str, int] | None:
            found = children(service.pid)
            return found if found.get("worker") not in (None, parts["worker"]) else None

        restarted = wait_for(worker_back, 30, "the worker to be restarted")
        assert restarted["worker"] != parts["worker"]
        assert "component exited; restarting" in (tmp_path / "run.log").read_text()

        check = subprocess.run([sys.executable, "-m", "cdc", "check"], env=env, capture_output=True, text=True,
                               timeout=60)
        assert "kafka" in check.stdout.lower() and check.returncode in (0, 1)
        started = time.monotonic()
        service.send_signal(signal.SIGTERM)
        assert service.wait(40) == 0
        assert time.monotonic() - started < 40
        assert children(service.pid) == {}
        text = (tmp_path / "run.log").read_text()
        assert text.count('"component stopped"') >= 3 or text.count("component stopped") >= 3
    finally:
        if service.poll() is None:
            service.kill()
        for name in (env["CDC_ERP_DATABASE"], env["CDC_CRM_DATABASE"]):
            await admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE database = $1 AND NOT active", name)
        for name in (env["CDC_ERP_DATABASE"], env["CDC_CRM_DATABASE"], env["CDC_STATE_DATABASE"]):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
