"""Throwaway databases on the real PostgreSQL for the mapping tests, created under a random name and dropped
afterwards.

Import `scratch_database` where it is used; the `demo_databases` fixture is registered for every test by
tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cdc.database import quote_ident
from cdc.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "cdc" / "demo"


def dsn_for(dsn: str, database: str) -> str:
    """The same server and credentials as `dsn`, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@asynccontextmanager
async def scratch_database(settings: Settings, label: str, *sql_files: Path) -> AsyncIterator[str]:
    """A new database named `cdc_test_mapping_<label>_<random>` with `sql_files` applied; its DSN."""
    server = settings.dsn("erp")
    try:
        admin = await asyncpg.connect(server, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc}); start it with `cdc stack up`")
    name = f"cdc_test_mapping_{label}_{secrets.token_hex(4)}"
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        dsn = dsn_for(server, name)
        conn = await asyncpg.connect(dsn)
        try:
            for sql in sql_files:
                await conn.execute(sql.read_text())
        finally:
            await conn.close()
        yield dsn
    finally:
        if admin.is_closed():  # PostgreSQL restarted meanwhile (the fault suite does that)
            admin = await asyncpg.connect(server, timeout=10)
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.close()


@pytest.fixture(scope="session")
async def demo_databases(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """DSNs of a fresh demo ERP and demo CRM (schemas from cdc/demo/erp.sql and crm.sql, no rows)."""
    async with scratch_database(settings, "erp", DEMO / "erp.sql") as erp, \
            scratch_database(settings, "crm", DEMO / "crm.sql") as crm:
        yield {"erp": erp, "crm": crm}
