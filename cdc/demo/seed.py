"""Filling the demo databases with generated data (see `cdc.demo.dataset`) through COPY, in chunks.

Each database is seeded in one transaction, so a failed seed leaves nothing behind. Inside it, the foreign
keys and the secondary indexes of the demo tables are dropped for the load and restored from their recorded
definitions afterwards: one index build and one foreign-key check per table are several times cheaper than
row-by-row maintenance, and the check still proves every reference. The demo tables stay locked meanwhile.
Generation (Python) and loading (PostgreSQL) overlap: the next batch is generated in a thread while the
previous one is copied, and the ERP and the CRM are written concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass, field

import asyncpg

from cdc.database import connect, quote_ident
from cdc.demo.dataset import COLUMNS, TABLES, Batch, Dataset, Shape
from cdc.errors import CdcError, ConfigError, ServiceUnavailable
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings

MAIN_TABLE: dict[System, tuple[str, str]] = {"erp": ("customer", "customers"), "crm": ("account", "accounts")}
BLOCK = 10_000
"""Customers (or accounts) per batch; their contacts come in the same batch."""


@dataclass
class SeedReport:
    rows: dict[tuple[System, str], int] = field(default_factory=dict)
    seconds: float = 0.0
    near_duplicates: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


async def seed(settings: Settings, *, erp: bool, crm: bool, customers: int, seed: int, overlap: float,
               reset: bool = False, block: int = BLOCK) -> SeedReport:
    """Generate the data set of (customers, seed, overlap) and load the chosen systems' part of it.

    Refuses a system that already has demo data unless `reset`, which empties its demo tables first.
    """
    systems = [s for s, chosen in zip(SYSTEMS, (erp, crm), strict=True) if chosen]
    if not systems:
        raise ConfigError("nothing to seed: choose --erp, --crm or --both")
    try:
        shape = Shape(customers=customers, seed=seed, overlap=overlap)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    started = time.perf_counter()
    report = SeedReport(rows={key: 0 for key in COLUMNS if key[0] in systems})
    try:
        async with contextlib.AsyncExitStack() as stack:
            conns: dict[System, asyncpg.Connection] = {}
            for system in systems:
                conns[system] = await connect(settings.dsn(system), role=system)
                stack.push_async_callback(conns[system].close)
            async with contextlib.AsyncExitStack() as transactions:
                for system, conn in conns.items():
                    await transactions.enter_async_context(conn.transaction())
                    await _prepare(conn, system, reset=reset)
                restore = {system: await _drop_constraints(conn, system) for system, conn in conns.items()}
                dataset = Dataset(shape, systems)
                await _load(conns, dataset.batches(block), report)
                await _all(_run(conns[system], statements) for system, statements in restore.items())
            await asyncio.gather(*(conn.execute(f"ANALYZE {', '.join(map(quote_ident, TABLES[system]))}")
                                   for system, conn in conns.items()))
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError) as exc:
        raise ServiceUnavailable(f"seeding stopped: lost the database connection ({exc})") from None
    report.near_duplicates = len(dataset.near_duplicates)
    report.seconds = time.perf_counter() - started
    return report


async def _prepare(conn: asyncpg.Connection, system: System, *, reset: bool) -> None:
    tables = TABLES[system]
    missing = [t for t in tables if await conn.fetchval("SELECT to_regclass($1)", f"public.{t}") is None]
    if missing:
        raise ConfigError(f"{system} database has no demo table {missing[0]}: run `cdc demo setup` first")
    if reset:
        await conn.execute(f"TRUNCATE {', '.join(map(quote_ident, tables))} CASCADE")
        return
    main, plural = MAIN_TABLE[system]
    count = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(main)}")
    if count:
        raise CdcError(f"{system} already has {count} {plural}: pass --reset")
    for table in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(table)})"):
            raise CdcError(f"{system} already has rows in {table}: pass --reset")


async def _drop_constraints(conn: asyncpg.Connection, system: System) -> list[str]:
    """Drop the foreign keys and the indexes backing no constraint of the demo tables.

    Returns the statements that restore them: indexes first, then foreign keys.
    """
    tables = list(TABLES[system])
    indexes = await conn.fetch(
        """SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
                  pg_get_indexdef(i.indexrelid) AS definition
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND t.relname = ANY($1::text[])
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            ORDER BY 1""", tables)
    foreign_keys = await conn.fetch(
        """SELECT k.conrelid::regclass::text AS tab, quote_ident(k.conname) AS name,
                  pg_get_constraintdef(k.oid) AS definition
             FROM pg_constraint k
             JOIN pg_class t ON t.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE k.contype = 'f' AND n.nspname = 'public' AND t.relname = ANY($1::text[])
            ORDER BY 1, 2""", tables)
    for fk in foreign_keys:
        await conn.execute(f"ALTER TABLE {fk['tab']} DROP CONSTRAINT {fk['name']}")
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    return ([index["definition"] for index in indexes]
            + [f"ALTER TABLE {fk['tab']} ADD CONSTRAINT {fk['name']} {fk['definition']}"
               for fk in foreign_keys])


async def _run(conn: asyncpg.Connection, statements: list[str]) -> None:
    for statement in statements:
        await conn.execute(statement)


async def _load(conns: dict[System, asyncpg.Connection], batches: Iterator[Batch], report: SeedReport) -> None:
    pending: asyncio.Task[None] | None = None
    try:
        while True:
            # generated while the previous batch is being copied
            batch = await asyncio.to_thread(next, batches, None)
            if pending is not None:
                await pending
                pending = None
            if batch is None:
                return
            pending = asyncio.create_task(_write(conns, batch, report))
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)


async def _write(conns: dict[System, asyncpg.Connection], batch: Batch, report: SeedReport) -> None:
    async def one(system: System, conn: asyncpg.Connection) -> None:
        for key, rows in batch.items():  # parents before children
            if key[0] == system:
                await conn.copy_records_to_table(key[1], records=rows, columns=COLUMNS[key])
                report.rows[key] += len(rows)

    await _all(one(system, conn) for system, conn in conns.items())


async def _all(work: Iterable[Awaitable[None]]) -> None:
    """Run concurrently, and wait for every one even when one fails: work still running on another connection
    would make that connection's rollback fail with "another operation is in progress"."""
    for outcome in await asyncio.gather(*work, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
