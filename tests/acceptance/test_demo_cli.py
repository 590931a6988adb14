"""`cdc demo setup | seed | load`, run as a user runs them, on throwaway databases `cdc_test_demo_<random>_*`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from cdc.settings import Settings
from tests.integration.demo_fixtures import throwaway

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]


def cdc(*args: str, settings: Settings | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)  # keeps CDC_* addresses (ports, DSNs) of the stack under test
    if settings is not None:
        env.update(CDC_ERP_DATABASE=settings.erp_database, CDC_CRM_DATABASE=settings.crm_database,
                   CDC_STATE_DATABASE=settings.state_database)
    return subprocess.run([sys.executable, "-m", "cdc", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[Settings]:
    async for s in throwaway(settings):
        yield s


async def count(settings: Settings, system: str, table: str) -> int:
    conn = await asyncpg.connect(settings.dsn(system))
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


def test_seed_help_lists_its_options():
    result = cdc("demo", "seed", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--erp", "--crm", "--both", "--customers", "--seed", "--overlap", "--reset"):
        assert option in result.stdout
    assert cdc("demo", "load", "--help").returncode == 0
    assert "--rate" in cdc("demo", "load", "--help").stdout


async def test_setup_seed_refuse_reset_and_load_from_the_command_line(databases: Settings):
    s = databases
    setup = cdc("demo", "setup", settings=s)
    assert setup.returncode == 0, setup.stderr
    assert setup.stdout.splitlines() == [f"{s.erp_database}: created", f"{s.crm_database}: created",
                                         f"{s.state_database}: created", "demo schemas applied"]

    seeded = cdc("demo", "seed", "--customers", "60", "--seed", "3", settings=s)
    assert seeded.returncode == 0, seeded.stderr
    rows = {tuple(cell.strip() for cell in line.split("│")[1:4])
            for line in seeded.stdout.splitlines() if line.count("│") == 4}
    assert {("erp", "customer", "60"), ("crm", "account", "60"), ("erp", "item", "30")} <= rows
    assert "rows in" in seeded.stdout and "rows/s" in seeded.stdout
    assert await count(s, "erp", "customer") == 60 and await count(s, "crm", "account") == 60

    again = cdc("demo", "seed", "--customers", "10", settings=s)
    assert again.returncode == 1
    assert again.stderr == "error: erp already has 60 customers: pass --reset\n"

    reset = cdc("demo", "seed", "--erp", "--customers", "25", "--reset", settings=s)
    assert reset.returncode == 0, reset.stderr
    assert " crm " not in reset.stdout
    assert await count(s, "erp", "customer") == 25 and await count(s, "crm", "account") == 60

    load = cdc("demo", "load", "--rate", "40", "--duration", "1.5", settings=s)
    assert load.returncode == 0, load.stderr
    assert "changes in" in load.stdout and "0 failed" in load.stdout
    assert " update " in load.stdout
