"""Capture benchmark (a script, not a test): run against the real stack (`cdc stack up`).

1. Throughput: N row changes (default 1,000,000) committed while capture is stopped, then capture started; events/s
   from the start of capture to the broker's acknowledgement of the last event.
2. Latency: a steady load of R changes/s (default 1,000) for D seconds while capture runs; commit-to-ack latency
   p50/p99 (commit time from the WAL, ack time when the producer's future resolves, same clock).

Uses a throwaway database `cdc_bench_cap_<random>` and topic prefix `cdc_bench_<random>`, dropped at the end.

    python bench/capture_throughput.py [--changes 1000000] [--rate 1000] [--seconds 30] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import secrets
import statistics
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from cdc import log
from cdc.capture.loop import SystemCapture, open_source, prepare_source, wait
from cdc.capture.publisher import Publisher
from cdc.database import quote_ident
from cdc.demo.setup import apply_schema, drop_database
from cdc.mapping.load import load_mapping_file
from cdc.settings import Settings
from cdc.topics.admin import ensure_topics
from cdc.topics.producer import start_producer


class TimedPublisher(Publisher):
    """Records, per event, the time from its transaction's commit to the broker's acknowledgement of its batch."""

    def __init__(self, producer, capture_ref: list) -> None:
        super().__init__(producer)
        self.capture_ref = capture_ref
        self.latencies_us: list[float] = []
        self.last_ack = 0.0
        self.expected = 0
        self.all_acked = asyncio.Event()
        self._commits: dict[int, list[int]] = {}

    def expect(self, events: int) -> None:
        """Set `all_acked` once `events` events have been acknowledged (counting from now)."""
        self.latencies_us.clear()
        self.expected = events
        self.all_acked.clear()

    async def publish(self, topic: str, key: bytes, value: bytes) -> tuple[str, int]:
        where = await super().publish(topic, key, value)
        self._commits.setdefault(id(self._open[where]), []).append(self.capture_ref[0].assembler.commit_ts)
        return where

    async def _submit(self, where: tuple[str, int]) -> asyncio.Future:
        commits = self._commits.pop(id(self._open[where]), [])
        future = await super()._submit(where)
        future.add_done_callback(lambda f, c=commits: self._acked(f, c))
        return future

    def _acked(self, future: asyncio.Future, commits: list[int]) -> None:
        if not future.cancelled() and future.exception() is None:
            now = time.time()
            self.last_ack = now
            self.latencies_us.extend(now * 1e6 - c for c in commits)
            if len(self.latencies_us) >= self.expected:
                self.all_acked.set()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def dsn_for(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


async def write_backlog(dsn: str, changes: int, per_txn: int = 10_000) -> float:
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        for first in range(0, changes, per_txn):
            await conn.execute(
                "INSERT INTO item (no, description, unit_price, inventory, blocked) "
                "SELECT 'T' || g, 'benchmark item ' || g, (g % 10000) / 100.0, g % 97, g % 2 = 0 "
                "  FROM generate_series($1::int, $2::int) g", first, min(first + per_txn, changes) - 1)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def steady_load(dsn: str, rate: int, seconds: float, per_txn: int = 5) -> int:
    """`rate` changes/s as transactions of `per_txn` inserts, paced by the clock (no drift)."""
    conn = await asyncpg.connect(dsn)
    txns_per_s = rate / per_txn
    start = time.perf_counter()
    n = 0
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            due = n / txns_per_s
            if due > elapsed:
                await asyncio.sleep(due - elapsed)
            base = n * per_txn
            await conn.execute(
                "INSERT INTO item (no, description, unit_price) "
                "SELECT 'L' || g, 'latency item ' || g, 1.5 FROM generate_series($1::int, $2::int) g",
                base, base + per_txn - 1)
            n += 1
    finally:
        await conn.close()
    return n * per_txn


async def current_lsn(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")


async def until_acked(publisher: TimedPublisher, runner: asyncio.Task) -> None:
    """Wait until the publisher saw every expected acknowledgement; raise if capture stopped first."""
    waiter = asyncio.create_task(publisher.all_acked.wait())
    await asyncio.wait([waiter, runner], return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        waiter.cancel()
        runner.result()
        raise RuntimeError("capture stopped before every event was acknowledged")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    log.configure("console", "warning")
    token = secrets.token_hex(3)
    base = Settings()
    database = f"cdc_bench_cap_{token}"
    admin = await asyncpg.connect(dsn_for(base.dsn("erp"), "postgres"))
    await admin.execute(f"CREATE DATABASE {quote_ident(database)}")
    dsn = dsn_for(base.dsn("erp"), database)
    s = base.model_copy(update={"erp_dsn": SecretStr(dsn), "topic_prefix": f"cdc_bench_{token}",
                                "capture_batch_changes": args.batch})
    profiler = cProfile.Profile() if args.profile else None
    try:
        await apply_schema(dsn, "erp")
        mapping = load_mapping_file(s.mapping_file)
        conn = await open_source(s, "erp")
        source = await prepare_source(conn, s, "erp", mapping)
        await ensure_topics(s, [s.topic("erp", t) for _, t in source.tables])
        producer = await start_producer(s, client_id="cdc-bench")
        ref: list = []
        publisher = TimedPublisher(producer, ref)
        capture = SystemCapture(s, source, conn, publisher)
        ref.append(capture)

        # 1. throughput on a backlog
        wrote = await write_backlog(dsn, args.changes)
        print(f"backlog: {args.changes:,} inserts committed in {wrote:.1f} s")
        stop = asyncio.Event()
        if profiler:
            profiler.enable()
        publisher.expect(args.changes)
        started = time.time()
        runner = asyncio.create_task(capture.run(stop))
        await until_acked(publisher, runner)
        elapsed = publisher.last_ack - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        throughput = args.changes / elapsed
        print(f"throughput: {args.changes:,} events in {elapsed:.2f} s = {throughput:,.0f} events/s "
              f"(batch {s.capture_batch_changes})")

        # 2. latency at a steady rate, once the slot's restart point has moved past the backlog (until then every
        #    peek decodes the backlog again to skip it; PostgreSQL moves it at its next running-xacts record)
        backlog_end = await current_lsn(admin)
        settle = time.perf_counter()
        while await admin.fetchval("SELECT (restart_lsn - '0/0'::pg_lsn)::int8 FROM pg_replication_slots "
                                   "WHERE slot_name = $1", source.slot) < backlog_end:
            if time.perf_counter() - settle > 120:
                print("restart point still behind the backlog after 120 s")
                break
            await wait(stop, 0.5)
        print(f"restart point past the backlog after {time.perf_counter() - settle:.1f} s")
        publisher.expect(10**12)
        wal_before, load_started = await current_lsn(admin), time.perf_counter()
        sent = await steady_load(dsn, args.rate, args.seconds)
        wal_rate = (await current_lsn(admin) - wal_before) / (time.perf_counter() - load_started) / 1e6
        publisher.expected = sent
        if len(publisher.latencies_us) >= sent:
            publisher.all_acked.set()
        await until_acked(publisher, runner)
        lat_ms = [v / 1000 for v in publisher.latencies_us]
        print(f"latency at {args.rate:,} changes/s for {args.seconds:.0f} s ({sent:,} events): "
              f"p50 {pct(lat_ms, 0.50):.1f} ms, p99 {pct(lat_ms, 0.99):.1f} ms, max {max(lat_ms):.1f} ms "
              f"(cluster-wide WAL meanwhile: {wal_rate:.1f} MB/s; load average {os.getloadavg()[0]:.1f})")
        stop.set()
        await runner
        await capture.close()
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or _cpu()}, "
              f"Python {platform.python_version()}, PostgreSQL {await admin.fetchval('SHOW server_version')}")
    finally:
        await drop_database(admin, database)  # and its slot, even if still in use
        await admin.close()
        await delete_topics(s.kafka_bootstrap, f"cdc_bench_{token}.")


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=Settings().capture_batch_changes)
    parser.add_argument("--profile", help="write a cProfile of the throughput phase to this file")
    asyncio.run(main(parser.parse_args()))
