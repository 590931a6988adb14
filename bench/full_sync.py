"""Full synchronization benchmark (a script, not a test): run against the real stack (`cdc stack up`).

Seeds an ERP with the demo generator (`cdc.demo.seed`: 100,000 customers by default, which brings ~250,000
contacts, 50,000 items, 5,000 resources and the small tables), leaves the CRM empty, starts `--workers` sync
workers (`python -m cdc worker`, 0: the orchestrator's in-process worker) and runs a full sync of every mapping.
Prints the wall time of the full sync, the records replayed and created per second, and the jobs.

The ERP customers' salesperson codes are emptied first: SALESPEOPLE flows CRM → ERP only, so with an empty CRM no
salesperson can be any account's owner (those customers would fail, which is not what is measured here).

Uses throwaway databases `cdc_bench_fs_<random>_{erp,crm,state}` and topic prefix `cdc_bench_fs_<random>`,
dropped at the end (unless --keep).

    python bench/full_sync.py [--customers 100000] [--workers 2] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import sys
import time
from pathlib import Path

import asyncpg

from cdc import log
from cdc.cli.progress import LineReporter
from cdc.demo.seed import seed
from cdc.demo.setup import apply_schema
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.full_sync import full_sync
from cdc.orchestrator.runner import decided
from cdc.orchestrator.workers import group_members
from cdc.settings import Settings
from consumers import Worker

ROOT = Path(__file__).resolve().parents[1]


def environment(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_")}
    env.update({"CDC_ERP_DATABASE": s.erp_database, "CDC_CRM_DATABASE": s.crm_database,
                "CDC_STATE_DATABASE": s.state_database, "CDC_TOPIC_PREFIX": s.topic_prefix,
                "CDC_CONSUMER_GROUP": s.consumer_group, "CDC_LOG_LEVEL": "warning",
                "CDC_PG_PORT": str(s.pg_port), "CDC_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                "CDC_HOME": str(s.home.resolve())})  # the local stack's, and its generated password
    return env


async def main(customers: int, workers: int, keep: bool) -> None:
    log.configure("console", "warning")
    tag = f"cdc_bench_fs_{secrets.token_hex(3)}"
    s = Settings(erp_database=f"{tag}_erp", crm_database=f"{tag}_crm", state_database=f"{tag}_state",
                 topic_prefix=tag, consumer_group=tag)
    admin = await asyncpg.connect(s.local_dsn("postgres"))
    processes: list[asyncio.subprocess.Process] = []
    try:
        for name in (s.erp_database, s.crm_database, s.state_database):
            await admin.execute(f'CREATE DATABASE "{name}"')
        await apply_schema(s.dsn("erp"), "erp")
        await apply_schema(s.dsn("crm"), "crm")
        started = time.perf_counter()
        report = await seed(s, erp=True, crm=False, customers=customers, seed=1, overlap=0.0)
        erp = await asyncpg.connect(s.dsn("erp"))
        try:
            await erp.execute("UPDATE customer SET salesperson_code = NULL")
            await erp.execute("VACUUM ANALYZE customer")
        finally:
            await erp.close()
        print(f"seeded {report.total:,} ERP rows in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{table} {n:,}" for (_, table), n in report.rows.items()), flush=True)

        for _ in range(workers):
            processes.append(await asyncio.create_subprocess_exec(sys.executable, "-m", "cdc", "worker", cwd=ROOT,
                                                                  env=environment(s)))
        if workers:
            deadline = time.monotonic() + 120
            while await group_members(s) < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not join their consumer group")
                await asyncio.sleep(0.5)

        mapping_file = load_mapping_file(s.mapping_file)
        began = time.perf_counter()
        result = await full_sync(s, mapping_file, stop=asyncio.Event(), reporter=LineReporter(sys.stdout),
                                 worker=Worker)
        seconds = time.perf_counter() - began

        replayed = sum(decided(j.counts) for j in result.jobs)
        created = sum(j.counts.inserted for j in result.jobs)
        failed = sum(j.counts.failed for j in result.jobs)
        print(f"\nfull sync {result.status} in {seconds:.1f} s with "
              f"{workers or 'an in-process'} worker{'s' if workers > 1 else ''}")
        print(f"records replayed and decided: {replayed:,} ({replayed / seconds:,.0f}/s)")
        print(f"records created in the CRM:   {created:,} ({created / seconds:,.0f}/s); failed {failed:,}")
        for job in result.jobs:
            counts = ", ".join(f"{k} {v:,}" for k, v in job.counts.as_dict().items() if v)
            print(f"  {job.mapping:<17} {job.direction:<7} {counts}")
        print(f"machine: {platform.platform()}, {os.cpu_count()} cpu(s), Python {platform.python_version()}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 30)
        if not keep:
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await _delete_topics(s)
        await admin.close()


async def _delete_topics(s: Settings) -> None:
    from cdc.topics.admin import _admin

    with contextlib.suppress(Exception):
        client = await _admin(s, 10)
        try:
            topics = [t for t in await client.list_topics() if t.startswith(s.topic_prefix + ".")]
            if topics:
                await client.delete_topics(topics)
        finally:
            await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in-process worker)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and topics")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.workers, args.keep))
