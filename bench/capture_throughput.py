"""Capture benchmark (a script, not a test): run against the real stack (`cdc stack up`).

1. Throughput: N row changes (default 1,000,000) committed while capture is stopped, then capture started; events/s
   from the start of capture to the broker's acknowledgement of the last event.
2. Latency: a steady load of R changes/s (default 1,000) for D seconds while capture runs; commit-to-ack latency
   p50/p99 (commit time from the WAL, ack time when the producer's future resolves, same clock). Measured twice:
   on a quiet cluster, then while another database of the cluster writes `--noise-mbps` MB/s of WAL (a separate
   process, `--noise-commits` transactions a second). Each starts with 2 s at the rate that are not measured.
3. Idle: no changes for `--idle-seconds` while the other database keeps writing; the CPU capture used (this
   process) and the CPU of the PostgreSQL processes serving capture (its connections, walsender included), in
   percent of one core.

CPU per process is read from /proc for the throughput phase too: capture (this process), the PostgreSQL processes
serving capture, the rest of PostgreSQL, the Kafka broker.

Uses throwaway databases `cdc_bench_cap_<random>` (and `..._noise`) and topic prefix `cdc_bench_<random>`, dropped
at the end.

    python bench/capture_throughput.py [--changes 1000000] [--rate 1000] [--seconds 30] [--noise-mbps 5]
                                       [--idle-seconds 60] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import secrets
import statistics
import subprocess
import sys
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
from cdc.stack.kafka import LocalKafka
from cdc.topics.admin import ensure_topics
from cdc.topics.partitioner import partition_for
from cdc.topics.producer import start_producer


class TimedPublisher(Publisher):
    """Knows when a given number of events has been acknowledged and, while `recording`, the time from each event's
    commit to the broker's acknowledgement of its batch (recording costs a little per event: off for throughput).

    Each recorded event is tied to the record batch it was appended to: an event `publish` appends after submitting
    a full batch belongs to the next one, an event appended just before `publish` submits every open batch (the
    limit of unacknowledged events) to the one submitted. Acknowledgements of batches submitted before `expect` or
    a `reset` are not counted."""

    def __init__(self, producer, capture_ref: list, **options) -> None:
        super().__init__(producer, **options)
        self.capture_ref = capture_ref
        self.latencies_us: list[float] = []
        self.timings: list[tuple[int, float, float, float]] = []  # per event: commit, read, submitted, acked (µs)
        self.recording = False
        self.last_ack = 0.0
        self._until = 0
        self._want: int | None = None
        self.all_acked = asyncio.Event()
        self._commits: dict[tuple[str, int], list[tuple[int, float]]] = {}  # open batch -> (commit, read) per event
        self._pending: tuple[str, bytes, tuple[int, float]] | None = None  # the event `publish` is appending
        self._generation = 0

    def expect(self, events: int, *, record: bool, since: int | None = None) -> None:
        """Set `all_acked` once `events` more events than `since` (default: now) have been acknowledged
        (`record`: and their latencies recorded)."""
        self._forget()
        self.recording = record
        self.all_acked.clear()
        self._until = (self.acknowledged if since is None else since) + events
        self._want = events if record else None
        self._check()

    def reset(self, acks) -> None:
        super().reset(acks)
        self._forget()

    def _forget(self) -> None:
        self.latencies_us.clear()
        self.timings.clear()
        self._commits.clear()
        self._pending = None
        self._generation += 1

    def _check(self) -> None:
        done = len(self.latencies_us) >= self._want if self._want is not None else self.acknowledged >= self._until
        if done and not self.all_acked.is_set():
            self.last_ack = time.time()
            self.all_acked.set()

    def _event(self) -> tuple[int, float]:
        return self.capture_ref[0].assembler.commit_ts, time.time() * 1e6

    def add(self, topic: str, key: bytes, value: bytes) -> tuple[str, int] | None:
        where = super().add(topic, key, value)
        if where is not None and self.recording:
            self._commits.setdefault(where, []).append(self._event())
        return where

    async def _publish_waiting(self, topic: str, key: bytes, value: bytes) -> tuple[str, int]:
        if not self.recording:
            return await super()._publish_waiting(topic, key, value)
        self._pending = (topic, key, self._event())
        try:
            where = await super()._publish_waiting(topic, key, value)
        except BaseException:
            self._pending = None
            raise
        self._appended()
        return where

    def _appended(self) -> None:
        """The pending event is in its partition's open batch now."""
        if self._pending is not None:
            topic, key, event = self._pending
            self._pending = None
            self._commits.setdefault((topic, partition_for(key, self._partitions[topic])), []).append(event)

    async def submit(self) -> None:
        self._appended()  # `publish` submits every open batch only once its event is appended
        await super().submit()

    async def _submit(self, where: tuple[str, int]) -> asyncio.Future:
        commits = self._commits.pop(where, None)
        generation = self._generation
        submitted = time.time() * 1e6
        future = await super()._submit(where)
        if commits:
            future.add_done_callback(lambda f: self._timed(f, commits, submitted, generation))
        return future

    def _timed(self, future: asyncio.Future, commits: list[tuple[int, float]], submitted: float,
               generation: int) -> None:
        if generation == self._generation and not future.cancelled() and future.exception() is None:
            now = time.time() * 1e6
            self.latencies_us.extend(now - commit for commit, _ in commits)
            self.timings.extend((commit, read, submitted, now) for commit, read in commits)
            self._check()

    def _settled(self, future: asyncio.Future, acks, number: int, events: int) -> None:
        super()._settled(future, acks, number, events)
        self._check()


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


async def steady_load(dsn: str, rate: int, seconds: float, tag: str, per_txn: int = 5) -> int:
    """`rate` changes/s as transactions of `per_txn` inserts (keys `L<tag>-<n>`), paced by the clock (no drift)."""
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
                "SELECT $3 || g, 'latency item ' || g, 1.5 FROM generate_series($1::int, $2::int) g",
                base, base + per_txn - 1, f"L{tag}-")
            n += 1
    finally:
        await conn.close()
    return n * per_txn


TICK = os.sysconf("SC_CLK_TCK")
NOISE_DSN = "CDC_BENCH_NOISE_DSN"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 when it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    """CPU used between `start` and `stop` by named groups of processes (a group is re-listed at both ends, so a
    process that appears in between counts from its start)."""

    def __init__(self, groups) -> None:
        self.groups = groups  # name -> async () -> list of pids

    async def start(self) -> None:
        self._began = time.monotonic()
        self._before = {name: {pid: cpu_seconds(pid) for pid in await pids()} for name, pids in self.groups.items()}

    async def stop(self) -> dict[str, float]:
        """Percent of one core per group over the interval."""
        wall = time.monotonic() - self._began
        used = {}
        for name, pids in self.groups.items():
            before = self._before[name]
            now = set(await pids()) | set(before)
            used[name] = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in now) / wall * 100
        self.wall = wall
        return used


def pg_pids(admin: asyncpg.Connection, where: str, *args):
    async def pids() -> list[int]:
        return [r[0] for r in await admin.fetch(f"SELECT pid FROM pg_stat_activity WHERE {where}", *args)]
    return pids


async def noise(dsn: str, mbps: float, commits: int) -> None:
    """Write about `mbps` MB/s of WAL into `dsn` in `commits` transactions a second until killed (what other
    databases of the cluster do); the rows per transaction follow the WAL actually written."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE IF NOT EXISTS noise (id bigserial PRIMARY KEY, payload text)")
    rows, n = 100, 0
    start = checked = time.perf_counter()
    wal_at = await current_lsn(conn)
    while True:
        due = n / commits
        elapsed = time.perf_counter() - start
        if due > elapsed:
            await asyncio.sleep(due - elapsed)
        await conn.execute("INSERT INTO noise (payload) SELECT repeat(md5(g::text), 6) FROM generate_series(1, $1) g",
                           rows)
        n += 1
        if n % 500 == 0:
            await conn.execute("TRUNCATE noise")
        if time.perf_counter() - checked >= 1:
            wal = await current_lsn(conn)
            rate = (wal - wal_at) / (time.perf_counter() - checked)
            rows = max(1, int(rows * (mbps * 1e6) / max(rate, 1.0)))
            wal_at, checked = wal, time.perf_counter()


def start_noise(dsn: str, mbps: float, commits: int) -> subprocess.Popen:
    """The WAL writer of `noise` in its own process (its CPU is not capture's); the DSN goes by environment."""
    return subprocess.Popen([sys.executable, __file__, "--noise-mbps", str(mbps), "--noise-commits", str(commits),
                             "--noise-only"], env={**os.environ, NOISE_DSN: dsn})


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


async def latency(admin, publisher: TimedPublisher, runner: asyncio.Task, dsn: str, rate: int,
                  seconds: float) -> tuple[list[float], float, tuple[int, float, float, float]]:
    """Latencies (ms) of `rate` changes/s for `seconds` (after 2 s of warm-up), the cluster's WAL rate meanwhile,
    and the slowest event's commit, read, submitted and acknowledged times (µs)."""
    tag = secrets.token_hex(3)
    before = publisher.acknowledged
    publisher.expect(await steady_load(dsn, rate, 2.0, f"{tag}w"), record=False, since=before)  # warm-up
    await until_acked(publisher, runner)  # the warm-up's events
    publisher.expect(10**12, record=True)
    wal_before, load_started = await current_lsn(admin), time.perf_counter()
    sent = await steady_load(dsn, rate, seconds, tag)
    wal_rate = (await current_lsn(admin) - wal_before) / (time.perf_counter() - load_started) / 1e6
    publisher._want = sent
    publisher._check()
    await until_acked(publisher, runner)
    timings = publisher.timings[:sent]
    return [v / 1000 for v in publisher.latencies_us[:sent]], wal_rate, max(timings, key=lambda t: t[3] - t[0])


def report_latency(label: str, lat_ms: list[float], rate: int, seconds: float, wal_rate: float,
                   slowest: tuple[int, float, float, float]) -> None:
    print(f"latency {label} at {rate:,} changes/s for {seconds:.0f} s ({len(lat_ms):,} events): "
          f"p50 {pct(lat_ms, 0.50):.1f} ms, p99 {pct(lat_ms, 0.99):.1f} ms, max {max(lat_ms):.1f} ms "
          f"(cluster-wide WAL meanwhile: {wal_rate:.1f} MB/s; load average {os.getloadavg()[0]:.1f})")
    commit, read, submitted, acked = slowest
    print(f"  the max: commit to read by capture {(read - commit) / 1000:.1f} ms, read to batch submitted "
          f"{(submitted - read) / 1000:.1f} ms, submitted to acknowledged {(acked - submitted) / 1000:.1f} ms")


def report_cpu(label: str, used: dict[str, float], wall: float) -> None:
    parts = ", ".join(f"{name} {value:.1f} %" for name, value in used.items())
    print(f"CPU {label} over {wall:.1f} s, in % of one core: {parts} (load average {os.getloadavg()[0]:.1f})")


async def main(args: argparse.Namespace) -> None:
    log.configure("console", "warning")
    token = secrets.token_hex(3)
    base = Settings()
    database = f"cdc_bench_cap_{token}"
    noise_db = f"{database}_noise"
    admin = await asyncpg.connect(dsn_for(base.dsn("erp"), "postgres"))
    await admin.execute(f"CREATE DATABASE {quote_ident(database)}")
    await admin.execute(f"CREATE DATABASE {quote_ident(noise_db)}")
    dsn = dsn_for(base.dsn("erp"), database)
    s = base.model_copy(update={"erp_dsn": SecretStr(dsn), "topic_prefix": f"cdc_bench_{token}",
                                "capture_batch_changes": args.batch})
    profiler = cProfile.Profile() if args.profile else None
    noise_proc: subprocess.Popen | None = None
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    capture_backends = pg_pids(admin, "application_name LIKE 'cdc-capture-erp%' AND datname = $1", database)
    all_pg = pg_pids(admin, "true")  # every backend and background process (not the postmaster)
    kafka_pid = LocalKafka(base).pid()

    async def me() -> list[int]:
        return [os.getpid()]

    async def kafka() -> list[int]:
        return [kafka_pid] if kafka_pid else []

    async def rest_of_pg() -> list[int]:
        mine = set(await capture_backends())
        return [p for p in await all_pg() if p not in mine]

    try:
        await apply_schema(dsn, "erp")
        mapping = load_mapping_file(s.mapping_file)
        conn = await open_source(s, "erp")
        source = await prepare_source(conn, s, "erp", mapping)
        await ensure_topics(s, [s.topic("erp", t) for _, t in source.tables])
        producer = await start_producer(s, client_id="cdc-bench", linger_ms=0)  # as capture's own
        ref: list = []
        publisher = TimedPublisher(producer, ref, max_unacknowledged=s.capture_batch_changes)
        capture = SystemCapture(s, source, conn, publisher)
        ref.append(capture)

        # 1. throughput on a backlog
        wrote = await write_backlog(dsn, args.changes)
        print(f"backlog: {args.changes:,} inserts committed in {wrote:.1f} s")
        stop = asyncio.Event()
        if profiler:
            profiler.enable()
        meter = CpuMeter({"capture": me, "PostgreSQL for capture": capture_backends,
                          "rest of PostgreSQL": rest_of_pg, "Kafka": kafka})
        await meter.start()
        publisher.expect(args.changes, record=False)
        started = time.time()
        runner = asyncio.create_task(capture.run(stop))
        await until_acked(publisher, runner)
        elapsed = publisher.last_ack - started
        used = await meter.stop()
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        throughput = args.changes / elapsed
        print(f"throughput: {args.changes:,} events in {elapsed:.2f} s = {throughput:,.0f} events/s "
              f"(batch {s.capture_batch_changes}; load average {os.getloadavg()[0]:.1f})")
        report_cpu("during the backlog", used, meter.wall)
        print("CPU per event during the backlog: " + ", ".join(
            f"{name} {value / 100 * meter.wall / args.changes * 1e6:.1f} µs" for name, value in used.items()))

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
        lat_ms, wal_rate, slowest = await latency(admin, publisher, runner, dsn, args.rate, args.seconds)
        report_latency("(quiet cluster)", lat_ms, args.rate, args.seconds, wal_rate, slowest)

        # 3. the same while another database writes WAL
        if args.noise_mbps > 0:
            noise_proc = start_noise(dsn_for(base.dsn("erp"), noise_db), args.noise_mbps, args.noise_commits)
            await asyncio.sleep(5)  # the writer finds its pace
            lat_ms, wal_rate, slowest = await latency(admin, publisher, runner, dsn, args.rate, args.seconds)
            report_latency(f"(other database writing {args.noise_mbps:g} MB/s)", lat_ms, args.rate, args.seconds,
                           wal_rate, slowest)

        # 4. idle: nothing to capture, the other database still writing
        if args.idle_seconds > 0:
            await asyncio.sleep(2)
            meter = CpuMeter({"capture": me, "PostgreSQL for capture": capture_backends})
            wal_before = await current_lsn(admin)
            await meter.start()
            await asyncio.sleep(args.idle_seconds)
            used = await meter.stop()
            wal_rate = (await current_lsn(admin) - wal_before) / meter.wall / 1e6
            report_cpu(f"idle (cluster-wide WAL {wal_rate:.1f} MB/s)", used, meter.wall)
            print(f"idle total: {sum(used.values()):.2f} % of one core")
        stop.set()
        await runner
        await capture.close()
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or _cpu()}, "
              f"Python {platform.python_version()}, PostgreSQL {await admin.fetchval('SHOW server_version')}")
        print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        if noise_proc is not None:
            noise_proc.kill()
            noise_proc.wait()
        await drop_database(admin, database)  # and its slot, even if still in use
        await drop_database(admin, noise_db)
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
    parser.add_argument("--batch", type=int, default=Settings().capture_batch_changes,
                        help="CDC_CAPTURE_BATCH_CHANGES: events published and not yet acknowledged, at most")
    parser.add_argument("--noise-mbps", type=float, default=5.0,
                        help="MB/s of WAL another database writes during the second latency phase and idle")
    parser.add_argument("--noise-commits", type=int, default=100, help="its transactions per second")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--noise-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="write a cProfile of the throughput phase to this file")
    parsed = parser.parse_args()
    if parsed.noise_only:
        asyncio.run(noise(os.environ[NOISE_DSN], parsed.noise_mbps, parsed.noise_commits))
    else:
        asyncio.run(main(parsed))
