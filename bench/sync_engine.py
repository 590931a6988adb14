"""Sync engine benchmark (a script, not a test): run against the real stack (`cdc stack up`).

Throwaway ERP, CRM and state databases and topic prefix (`cdc_bench_se_<random>`), dropped at the end unless
--keep. The ERP is seeded with the demo generator (salesperson codes emptied, as in bench/full_sync.py), the CRM is
left empty; ERP capture (`python -m cdc capture --system erp`) and `--workers` worker processes
(`python -m cdc worker`, one consumer group) run as subprocesses, as in production.

1. **Full sync** of every mapping (in this process, like `cdc full-sync`): the per-step lines give the create path
   (ERP → CRM, every record created) and the unchanged path (CRM → ERP, every record replayed and found equal).
2. **Bulk update**: with the workers stopped, every coupled ERP customer is updated (`phone_no`, transactions of
   10,000 rows); once capture has published every change, the workers start again and apply the backlog. Rate:
   updates over the span between the first and the last CRM write (`modifiedon`), and over the wall time from the
   workers' start.
3. **Latency** at each `--rates` changes/s for `--seconds`: transactions every 20 ms update `rate / 50` coupled
   customers each (a new `phone_no`). Per change: the CRM row's `modifiedon` (clock_timestamp() of the worker's
   write) minus the ERP row's `modified_at` (clock_timestamp() of the source update, just before its commit) —
   same PostgreSQL cluster, same clock. The first 2 s at the rate are not measured: the phase follows an idle
   source and the workers' batches settle to the rate; the aim is about a steady rate.

The bulk update ends when the workers' live counters have counted every change (polling them costs nothing), then
the accounts are checked once. `--mappings CURRENCY,CUSTOMER` syncs only what the bulk update needs, so a million
customers make a million-change bulk without syncing their contacts and items first.

    python bench/sync_engine.py [--customers 50000] [--workers 1] [--rates 200,1000,5000] [--seconds 20]
    python bench/sync_engine.py --customers 1000000 --mappings CURRENCY,CUSTOMER --rates ""   # 1M-change bulk
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from full_sync import _delete_topics, environment  # noqa: E402

from cdc import log  # noqa: E402
from cdc.cli.progress import LineReporter  # noqa: E402
from cdc.demo.seed import seed  # noqa: E402
from cdc.demo.setup import apply_schema  # noqa: E402
from cdc.mapping.load import load_mapping_file  # noqa: E402
from cdc.orchestrator.full_sync import full_sync  # noqa: E402
from cdc.orchestrator.runner import decided  # noqa: E402
from cdc.orchestrator.workers import group_members  # noqa: E402
from cdc.settings import Settings  # noqa: E402
from consumers import Worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TICK = 0.02
WARMUP = 2.0  # seconds at the rate before measuring: capture leaves its idle pacing, the workers settle


class Fleet:
    """Capture and worker subprocesses."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.capture: asyncio.subprocess.Process | None = None
        self.workers: list[asyncio.subprocess.Process] = []

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "cdc", *args, cwd=ROOT,
                                                    env=environment(self.s))

    async def start_capture(self) -> None:
        self.capture = await self._spawn("capture", "--system", "erp")

    async def start_workers(self, n: int) -> None:
        self.workers = [await self._spawn("worker") for _ in range(n)]
        deadline = time.monotonic() + 120
        while await group_members(self.s) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not join their consumer group")
            await asyncio.sleep(0.3)

    async def stop_workers(self) -> None:
        await _stop(self.workers)
        self.workers = []

    async def stop_all(self) -> None:
        await _stop(self.workers + ([self.capture] if self.capture else []))


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
    for p in processes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(p.wait(), 30)


async def coupled_customers(s: Settings) -> list[str]:
    state = await asyncpg.connect(s.dsn("state"))
    try:
        rows = await state.fetch("SELECT erp_key FROM cdc.couplings WHERE mapping = 'CUSTOMER' ORDER BY erp_key")
    finally:
        await state.close()
    return [r["erp_key"] for r in rows]


async def live_decided(state: asyncpg.Connection) -> int:
    """Changes of CUSTOMER ERP → CRM decided live so far (the worker's own counters: cheap to poll)."""
    return await state.fetchval(
        "SELECT coalesce(sum(inserted + modified + deleted + unchanged + skipped + failed), 0)::bigint FROM cdc.jobs "
        "WHERE kind = 'live' AND mapping = 'CUSTOMER' AND direction = 'to_crm'")


async def wait_decided(state: asyncpg.Connection, base: int, count: int, timeout: float) -> bool:
    """Until the workers have decided `count` more changes (their committed counters: cheap to poll, where
    comparing a million rows each time would take a core of its own)."""
    deadline = time.monotonic() + timeout
    while await live_decided(state) - base < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def wait_applied(crm: asyncpg.Connection, marks: dict[str, str], timeout: float) -> bool:
    """Until every CRM account numbered like a key shows its marked telephone1 (True), or the timeout."""
    deadline = time.monotonic() + timeout
    keys, wanted = list(marks), list(marks.values())
    while time.monotonic() < deadline:
        missing = await crm.fetchval(
            "SELECT count(*) FROM unnest($1::text[], $2::text[]) AS w(k, v) "
            "LEFT JOIN account a ON a.accountnumber = w.k AND a.telephone1 = w.v WHERE a.accountid IS NULL",
            keys, wanted)
        if missing == 0:
            return True
        await asyncio.sleep(0.2)
    return False


class CpuMeter:
    """CPU seconds (user + system, from /proc) used by each part of the pipeline between two readings: the
    worker processes, capture, every PostgreSQL process of the cluster, the Kafka broker (java), the rest."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        workers = {p.pid for p in self.fleet.workers}
        capture = self.fleet.capture.pid if self.fleet.capture else None
        used: dict[str, float] = defaultdict(float)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            seconds = (int(fields[11]) + int(fields[12])) / self.tick
            pid = int(entry.name)
            part = ("worker" if pid in workers else "capture" if pid == capture else
                    "postgresql" if comm == "postgres" else "kafka" if comm == "java" else "other")
            used[part] += seconds
            if part == "postgresql" and os.environ.get("CDC_BENCH_PG_DETAIL"):
                with contextlib.suppress(OSError):
                    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().split()
                    used[" ".join(title[1:3]) if len(title) > 2 else str(title)] += seconds
        return used

    @staticmethod
    def per_record(before: dict[str, float], after: dict[str, float], records: int) -> str:
        """µs of CPU per record by part; processes that came or went between the readings count from zero."""
        parts = ["worker", "postgresql", "capture", "kafka", "other"]
        use = {p: max(0.0, after.get(p, 0.0) - before.get(p, 0.0)) * 1e6 / records for p in parts}
        total = sum(use.values())
        if os.environ.get("CDC_BENCH_PG_DETAIL"):
            detail = {k: (after[k] - before.get(k, 0.0)) * 1e6 / records for k in after if k not in parts}
            print("  PostgreSQL by process:", ", ".join(f"{k} {v:,.0f}" for k, v in
                                                       sorted(detail.items(), key=lambda kv: -kv[1]) if v >= 1))
        return (", ".join(f"{p} {use[p]:,.0f}" for p in parts) + f"; all {total:,.0f} µs, so at most "
                f"{os.cpu_count() or 1} cores / {total:,.0f} µs = {(os.cpu_count() or 1) * 1e6 / total:,.0f} "
                "records/s on this machine at this cost")


async def bulk_update(s: Settings, fleet: Fleet, workers: int, keys: list[str]) -> None:
    erp = await asyncpg.connect(s.dsn("erp"))
    crm = await asyncpg.connect(s.dsn("crm"))
    state = await asyncpg.connect(s.dsn("state"))
    try:
        await fleet.stop_workers()
        base = await live_decided(state)
        marks = {k: f"B-{n}" for n, k in enumerate(keys)}
        began = time.perf_counter()
        for i in range(0, len(keys), 10_000):
            chunk = keys[i:i + 10_000]
            await erp.execute("UPDATE customer c SET phone_no = w.v FROM unnest($1::text[], $2::text[]) AS w(k, v) "
                              "WHERE c.no = w.k", chunk, [marks[k] for k in chunk])
        print(f"\nbulk update: {len(keys):,} ERP customers updated in {time.perf_counter() - began:.1f} s",
              flush=True)
        await _wait_published(s, erp)
        meter = CpuMeter(fleet)
        started = time.perf_counter()
        await fleet.start_workers(workers)
        joined = time.perf_counter() - started
        cpu_before = meter.read()  # from here on, the workers only apply (their start-up is left out)
        applied_before = await live_decided(state) - base
        ok = await wait_decided(state, base, len(keys), 180 + len(keys) / 500)
        wall = time.perf_counter() - started
        cpu_after = meter.read()
        peak = [_peak_mib(p.pid) for p in fleet.workers]
        ok = ok and await wait_applied(crm, marks, 60)
        first, last = await crm.fetchrow("SELECT min(modifiedon), max(modifiedon) FROM account "
                                         "WHERE telephone1 LIKE 'B-%'")
        span = (last - first).total_seconds()
        print(f"bulk update applied by {workers} worker(s){'' if ok else ' (TIMED OUT)'}: {len(keys):,} updates, "
              f"first to last CRM write {span:.1f} s = {len(keys) / span:,.0f} updates/s; wall from worker start "
              f"{wall:.1f} s (joining the group {joined:.1f} s) = {len(keys) / wall:,.0f}/s", flush=True)
        cost = meter.per_record(cpu_before, cpu_after, len(keys) - applied_before)
        print(f"CPU per update, µs (once the workers joined): {cost}", flush=True)
        print(f"worker peak memory (VmHWM): {', '.join(f'{m:.0f} MiB' for m in peak)}", flush=True)
    finally:
        await erp.close()
        await crm.close()
        await state.close()


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _wait_published(s: Settings, erp: asyncpg.Connection) -> None:
    """Until capture has published everything the ERP wrote so far (its slot confirmed past the current WAL
    position: capture advances the slot only after the broker acknowledged)."""
    target = await erp.fetchval("SELECT pg_current_wal_lsn()")
    began = time.perf_counter()
    while not await erp.fetchval("SELECT bool_or(confirmed_flush_lsn >= $1) FROM pg_replication_slots "
                                 "WHERE database = current_database()", target):
        if time.perf_counter() - began > 900:
            raise RuntimeError("capture did not publish the bulk update")
        await asyncio.sleep(0.5)
    print(f"capture published the changes {time.perf_counter() - began:.1f} s after the updates", flush=True)


async def latency(s: Settings, rate: int, seconds: float, keys: list[str], phase: int) -> None:
    per_tick = max(1, round(rate * TICK))
    erp = await asyncpg.connect(s.dsn("erp"))
    crm = await asyncpg.connect(s.dsn("crm"))
    try:
        touched: dict[str, str] = {}
        cursor = 0
        ticks = int(seconds / TICK)
        began = time.perf_counter()
        behind = 0.0
        warmup = int(WARMUP / TICK)
        start = time.perf_counter()
        for t in range(-warmup, ticks):
            if t == 0:
                began = time.perf_counter()
            chunk = [keys[(cursor + j) % len(keys)] for j in range(per_tick)]
            cursor += per_tick
            marks = [f"L{phase}-{cursor + j}" for j in range(per_tick)]
            await erp.execute("UPDATE customer c SET phone_no = w.v FROM unnest($1::text[], $2::text[]) AS w(k, v) "
                              "WHERE c.no = w.k", chunk, marks)
            if t < 0:  # warming up (capture leaves its idle pacing, the workers settle): not measured
                for key in chunk:
                    touched.pop(key, None)
            else:
                touched.update(zip(chunk, marks, strict=True))
            due = start + (t + warmup + 1) * TICK
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            elif t >= 0:
                behind = max(behind, -pause)
        generated = time.perf_counter() - began
        sent = ticks * per_tick
        ok = await wait_applied(crm, touched, 300)
        erp_rows = await erp.fetch("SELECT no, modified_at FROM customer WHERE no = ANY($1::text[])", list(touched))
        crm_rows = await crm.fetch("SELECT accountnumber, telephone1, modifiedon FROM account "
                                   "WHERE accountnumber = ANY($1::text[])", list(touched))
        at = {r["no"]: r["modified_at"] for r in erp_rows}
        lat = sorted((r["modifiedon"] - at[r["accountnumber"]]).total_seconds() * 1000 for r in crm_rows
                     if r["telephone1"] == touched.get(r["accountnumber"]))
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
        print(f"latency at {rate:,}/s for {seconds:.0f} s: {sent:,} changes in {generated:.1f} s "
              f"({sent / generated:,.0f}/s generated, generator at most {behind * 1000:.0f} ms late); "
              f"{len(lat):,} measured (last write per row){'' if ok else ' (NOT ALL APPLIED)'}: "
              f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms, max {lat[-1]:.0f} ms", flush=True)
    finally:
        await erp.close()
        await crm.close()


async def main(customers: int, workers: int, rates: list[int], seconds: float, keep: bool, skip_bulk: bool,
               mappings: list[str]) -> None:
    log.configure("console", "warning")
    tag = f"cdc_bench_se_{secrets.token_hex(3)}"
    s = Settings(erp_database=f"{tag}_erp", crm_database=f"{tag}_crm", state_database=f"{tag}_state",
                 topic_prefix=tag, consumer_group=tag)
    admin = await asyncpg.connect(s.local_dsn("postgres"))
    fleet = Fleet(s)
    try:
        for name in (s.erp_database, s.crm_database, s.state_database):
            await admin.execute(f'CREATE DATABASE "{name}"')
        await apply_schema(s.dsn("erp"), "erp")
        await apply_schema(s.dsn("crm"), "crm")
        report = await seed(s, erp=True, crm=False, customers=customers, seed=1, overlap=0.0)
        erp = await asyncpg.connect(s.dsn("erp"))
        try:
            await erp.execute("UPDATE customer SET salesperson_code = NULL")
            await erp.execute("VACUUM ANALYZE customer")
        finally:
            await erp.close()
        print(f"seeded {report.total:,} ERP rows", flush=True)
        await fleet.start_workers(workers)
        await fleet.start_capture()

        began = time.perf_counter()
        mapping_file = load_mapping_file(s.mapping_file)
        results = [await full_sync(s, mapping_file, stop=asyncio.Event(), reporter=LineReporter(sys.stdout),
                                   only=m, manual=m is not None, worker=Worker) for m in (mappings or [None])]
        seconds_fs = time.perf_counter() - began
        replayed = sum(decided(j.counts) for r in results for j in r.jobs)
        status = ", ".join(r.status for r in results)
        print(f"full sync {status} in {seconds_fs:.1f} s with {workers} worker(s)"
              f"{' of ' + ', '.join(mappings) if mappings else ''}: {replayed:,} replayed "
              f"({replayed / seconds_fs:,.0f}/s)", flush=True)

        keys = await coupled_customers(s)
        if not skip_bulk:
            await bulk_update(s, fleet, workers, keys)
        for phase, rate in enumerate(rates, start=1):
            await latency(s, rate, seconds, keys, phase)
        print(f"machine: {platform.platform()}, {os.cpu_count()} cpu(s), Python {platform.python_version()}")
    finally:
        await fleet.stop_all()
        if not keep:
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await _delete_topics(s)
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rates", default="200,1000,5000")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases and topics")
    parser.add_argument("--mappings", default="",
                        help="sync only these mappings, in this order (e.g. CURRENCY,CUSTOMER: what the bulk update "
                             "needs, for a bulk of a million customers without syncing their contacts)")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.workers, [int(r) for r in args.rates.split(",") if r], args.seconds,
                     args.keep, args.skip_bulk, [m for m in args.mappings.split(",") if m]))
