"""Benchmark: seed 1,000,000 ERP customers (with their contacts, items, resources, salespeople) into a throwaway
database pair on the local cluster, print wall time and rows per second, drop the databases.

    python bench/seed_1m.py [--customers N] [--both] [--seed S]

Not a test: results go to docs/performance.md ("Seed generator").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import time

from cdc.database import connect
from cdc.demo.seed import seed
from cdc.demo.setup import create_databases, drop_database
from cdc.settings import Settings


async def main(customers: int, both: bool, seed_value: int) -> None:
    suffix = secrets.token_hex(4)
    settings = Settings().model_copy(update={f"{role}_database": f"cdc_bench_seed_{suffix}_{role}"
                                             for role in ("erp", "crm", "state")})
    await create_databases(settings)
    try:
        started = time.perf_counter()
        report = await seed(settings, erp=True, crm=both, customers=customers, seed=seed_value, overlap=0.3)
        wall = time.perf_counter() - started
    finally:
        admin = await connect(settings.local_dsn("postgres"), role="maintenance")
        try:
            for role in ("erp", "crm", "state"):
                await drop_database(admin, getattr(settings, f"{role}_database"))
        finally:
            await admin.close()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python "
          f"{platform.python_version()}")
    for (system, table), rows in report.rows.items():
        print(f"  {system}.{table:<20} {rows:>10,}")
    customer_rows = report.rows[("erp", "customer")]
    print(f"total {report.total:,} rows in {wall:.1f}s wall: {report.total / wall:,.0f} rows/s "
          f"({customer_rows / wall:,.0f} customers/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--both", action="store_true", help="seed the CRM as well")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.both, args.seed))
