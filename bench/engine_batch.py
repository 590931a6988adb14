"""The sync engine alone (a script, not a test): batches of customer updates decided and applied in this process,
no Kafka and no capture in between, so the CPU the engine costs per change — here and in PostgreSQL — is measured
without the rest of the pipeline. Run against the real stack (`cdc stack up`); throwaway databases.

1. seed `--customers` ERP customers (demo data, salesperson codes emptied) and couple them with their new CRM
   accounts (CURRENCY and CUSTOMER replayed through the engine, creation allowed);
2. `--rounds` times: every customer gets a new `phone_no`; the changes, as capture would publish them, go through
   `Engine.process` in batches of `--batch`. Reported per applied update: this process's CPU (the worker's part
   without Kafka), this PostgreSQL cluster's CPU (its postmaster's children, exited ones included), wall time.

    python bench/engine_batch.py [--customers 20000] [--rounds 3] [--batch 2000] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdc import database, log  # noqa: E402
from cdc.demo.seed import seed  # noqa: E402
from cdc.demo.setup import apply_schema  # noqa: E402
from cdc.mapping.load import load_mapping_file  # noqa: E402
from cdc.orchestrator.replay import ReplayTarget, encode  # noqa: E402
from cdc.settings import Settings  # noqa: E402
from cdc.state import jobs, migrate  # noqa: E402
from consumers.batch import Engine  # noqa: E402
from consumers.incoming import Incoming, decode, interpret  # noqa: E402
from consumers.systems import open_links  # noqa: E402
from schemas import json_text  # noqa: E402


class ClusterCpu:
    """CPU seconds of one PostgreSQL cluster: its postmaster, its live children and the children that exited."""

    def __init__(self, data_dir: Path) -> None:
        self.postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> float:
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            pid, ppid = int(entry.name), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(f) for f in fields[11:15]) / self.tick  # own + exited children
            elif ppid == self.postmaster:
                total += (int(fields[11]) + int(fields[12])) / self.tick
        return total


def events(table: str, key: str, system: str, rows: list[dict[str, Any]], *, replay: bool, job: str = "") -> list:
    target = ReplayTarget(topic="t", system=system, database="d", schema="public", table=table, key_columns=(key,),
                          run_id="bench", job_id=job, mapping="", create=True)
    out = []
    now = int(time.time() * 1000)
    for n, row in enumerate(rows):
        value = json_text.loads(encode(target, row, now)[1])
        if replay:
            value["replay"]["mapping"] = target_mapping(table)
        else:
            value.update(op="u", replay=None, event_id=f"bench:{table}:{n}:{now}")
            value["source"].update(snapshot="false", lsn=now * 1000 + n, commit_lsn=now * 1000 + n)
        out.append(json.dumps(value).encode())
    return out


def target_mapping(table: str) -> str:
    return {"currency": "CURRENCY", "customer": "CUSTOMER"}[table]


async def main(customers: int, rounds: int, batch: int, profile: str | None, keep: bool) -> None:
    log.configure("console", "warning")
    tag = secrets.token_hex(3)
    base = Settings()
    s = Settings(**{**base.model_dump(), "erp_database": f"cdc_bench_eb_erp_{tag}",
                    "crm_database": f"cdc_bench_eb_crm_{tag}", "state_database": f"cdc_bench_eb_state_{tag}"})
    admin = await asyncpg.connect(s.local_dsn("postgres"))
    for name in (s.erp_database, s.crm_database, s.state_database):
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await apply_schema(s.dsn("erp"), "erp")
        await apply_schema(s.dsn("crm"), "crm")
        await seed(s, erp=True, crm=False, customers=customers, seed=1, overlap=0.3)
        erp = await database.connect(s.dsn("erp"), role="erp")
        await erp.execute("UPDATE customer SET salesperson_code = NULL")
        state = await database.connect(s.dsn("state"), role="state")
        announcer = await database.connect(s.dsn("state"), role="state")
        await migrate.migrate(state)
        mapping_file = load_mapping_file(s.mapping_file)
        links = await open_links(s, mapping_file)
        engine = Engine(s, mapping_file, links)
        tables = links["erp"].tables

        async def run(raw: list[bytes], mappings: list) -> None:
            for start in range(0, len(raw), batch):
                items = []
                for value in raw[start:start + batch]:
                    decoded = decode(value)
                    found = interpret(decoded, "erp", tables, mappings,  # type: ignore[arg-type]
                                      origin_prefix=s.replication_origin_prefix)
                    items += [Incoming(decoded.event, decoded.payload, m, c)  # type: ignore[union-attr]
                              for m, c in found]  # type: ignore[union-attr]
                await engine.process(state, items, announcer=announcer)

        started = time.monotonic()
        for table, key in (("currency", "code"), ("customer", "no")):
            mapping = mapping_file.get(target_mapping(table))
            job = await jobs.start_job(state, mapping.name, "full", "to_crm")
            rows = [dict(r) for r in await erp.fetch(f"SELECT * FROM {table} ORDER BY 1")]
            await run(events(table, key, "erp", rows, replay=True, job=str(job.id)),
                      mapping_file.for_table("erp", table))
        coupled = await state.fetchval("SELECT count(*) FROM cdc.couplings WHERE mapping = 'CUSTOMER'")
        print(f"{coupled:,} customers coupled in {time.monotonic() - started:.1f} s")

        cluster = ClusterCpu(s.home.resolve() / "postgres" / "data")
        profiler = cProfile.Profile() if profile else None
        for n in range(rounds):
            keys = [r["erp_key"] for r in await state.fetch(
                "SELECT erp_key FROM cdc.couplings WHERE mapping = 'CUSTOMER' ORDER BY erp_key")]
            await erp.execute("UPDATE customer SET phone_no = $1 || right(no, 6) WHERE no = ANY($2::text[])",
                              f"+4{n}", keys)
            rows = [dict(r) for r in await erp.fetch("SELECT * FROM customer WHERE no = ANY($1::text[]) "
                                                     "ORDER BY no", keys)]
            raw = events("customer", "no", "erp", rows, replay=False)
            pg0, cpu0, wall0 = cluster.read(), time.process_time(), time.monotonic()
            if profiler:
                profiler.enable()
            await run(raw, mapping_file.for_table("erp", "customer"))
            if profiler:
                profiler.disable()
            pg, cpu, wall = cluster.read() - pg0, time.process_time() - cpu0, time.monotonic() - wall0
            applied = await state.fetchval("SELECT sum(modified) FROM cdc.jobs WHERE kind = 'live'")
            per = 1e6 / len(rows)
            print(f"round {n + 1}: {len(rows):,} updates in {wall:.2f} s = {len(rows) / wall:,.0f}/s; CPU per update:"
                  f" engine {cpu * per:,.0f} µs, PostgreSQL {pg * per:,.0f} µs, together {(cpu + pg) * per:,.0f} µs"
                  f" (modified so far {applied:,})")
        if profiler:
            profiler.dump_stats(profile)
        for link in links.values():
            await link.close()
        for conn in (erp, state, announcer):
            await conn.close()
    finally:
        if not keep:
            admin = await asyncpg.connect(s.local_dsn("postgres"))
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--profile")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.rounds, args.batch, args.profile, args.keep))
