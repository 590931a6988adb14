"""Throwaway demo databases `cdc_test_demo_<random>_{erp,crm,state}` on the real PostgreSQL, dropped afterwards.

Import into a test module: `from tests.integration.demo_fixtures import throwaway`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cdc.demo.setup import drop_database
from cdc.settings import Settings


async def admin(settings: Settings) -> asyncpg.Connection:
    """A connection to the maintenance database; skips the test when PostgreSQL does not answer."""
    try:
        return await asyncpg.connect(settings.local_dsn("postgres"), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc}); start it with `cdc stack up`")


async def throwaway(settings: Settings) -> AsyncIterator[Settings]:
    """Settings naming three databases that do not exist yet; drops them (and their slots) at the end."""
    suffix = secrets.token_hex(4)
    names = {f"{role}_database": f"cdc_test_demo_{suffix}_{role}" for role in ("erp", "crm", "state")}
    conn = await admin(settings)
    try:
        yield settings.model_copy(update=names)
    finally:
        for name in names.values():
            await drop_database(conn, name)
        await conn.close()
