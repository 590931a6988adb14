"""The service as separate processes (capture, workers) on throwaway databases, for fault tests: kill -9 any of
them, restart, and check that nothing was lost or duplicated."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from cdc.demo.setup import apply_schema
from cdc.mapping.load import load_mapping_file
from cdc.pair import SYSTEMS
from cdc.settings import DEFAULT_MAPPING_FILE, Settings
from tests.throwaway import drop_throwaway


def creating_mapping_file(directory: Path) -> Path:
    """The default mappings with creation allowed everywhere, so every change has work to do, and with policies
    whose correct end state is two equal systems: deletes propagate (with `uncouple`, a record whose partner was
    deleted stays behind uncoupled, which verify rightly lists as missing) and conflicts go to the newest change
    (with `merge`, both sides editing one field is an open error and the pair rightly differs). Those policies
    are tested elsewhere; here they would hide a lost or duplicated change among expected differences. Matching
    is on unique fields only."""
    spec = yaml.safe_load(DEFAULT_MAPPING_FILE.read_text())
    for m in spec["mappings"]:
        m["sync_only_coupled"] = False
        if m.get("deletion") == "uncouple":
            m["deletion"] = "propagate"
        if m.get("conflict") == "merge":
            m["conflict"] = "newest-wins"
        # Customer names repeat in real data (and the workload renames customers): matching on them would
        # report the data's own duplicates. E-mails are unique.
        m["match_on"] = [f for f in m.get("match_on", []) if f["erp"] != "name"]
    path = directory / "mappings.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


class Service:
    def __init__(self, base: Settings, directory: Path, *, partitions: int = 3) -> None:
        tag = uuid.uuid4().hex[:8]
        self.directory = directory
        self.env = {
            **os.environ,
            "CDC_ERP_DATABASE": f"cdc_fault_erp_{tag}", "CDC_CRM_DATABASE": f"cdc_fault_crm_{tag}",
            "CDC_STATE_DATABASE": f"cdc_fault_state_{tag}", "CDC_TOPIC_PREFIX": f"f{tag}",
            "CDC_CONSUMER_GROUP": f"fg{tag}", "CDC_TOPIC_PARTITIONS": str(partitions),
            "CDC_MAPPING_FILE": str(creating_mapping_file(directory)), "CDC_HEARTBEAT_INTERVAL": "2",
            "CDC_LOG_FORMAT": "json",
        }
        self.settings = Settings(**{**base.model_dump(), **{
            k[4:].lower(): v for k, v in self.env.items() if k.startswith("CDC_") and k[4:].lower() in
            ("erp_database", "crm_database", "state_database", "topic_prefix", "consumer_group",
             "topic_partitions", "mapping_file", "heartbeat_interval")}})
        self.processes: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, int] = {}
        self.kills = 0

    async def create(self) -> None:
        s = self.settings
        admin = await asyncpg.connect(s.local_dsn("postgres"))
        try:
            for name in (s.erp_database, s.crm_database, s.state_database):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        for system in SYSTEMS:
            await apply_schema(s.dsn(system), system)

    def cli(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "cdc", *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"cdc {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr[-3000:]}")
        return result

    def start(self, name: str, *args: str) -> None:
        path = self.directory / f"{name}.log"
        log = path.open("ab")
        self.started_at[name] = path.stat().st_size
        # Workers are static group members: a restarted worker takes its partitions back at once rather than
        # after the session timeout of the one killed.
        env = {**self.env, "CDC_WORKER_INSTANCE": f"{self.env['CDC_CONSUMER_GROUP']}-{name}"} \
            if args[:1] == ("worker",) else self.env
        self.processes[name] = subprocess.Popen([sys.executable, "-m", "cdc", *args], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def working(self, name: str, timeout: float = 90) -> None:
        """Wait until the worker `name` started last has joined the group and got its partitions."""
        path = self.directory / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with path.open("rb") as f:
                f.seek(self.started_at[name])
                if b'"partitions assigned"' in f.read():
                    return
            if not self.alive(name):
                raise AssertionError(f"{name} exited with {self.processes[name].returncode}: see {path}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} got no partitions within {timeout}s: see {path}")

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills += 1

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    async def consumer_lag(self) -> int:
        """Messages on the mapped topics that the worker has not recorded as processed (tracked offsets)."""
        s = self.settings
        mapping = load_mapping_file(s.mapping_file)
        topics = [s.topic(system, t) for system in SYSTEMS for t in mapping.tables(system)]
        consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or
                                                                         range(s.topic_partitions))]
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        conn = await asyncpg.connect(s.dsn("state"))
        try:
            rows = await conn.fetch("SELECT topic, partition, next_offset FROM cdc.tracked_offsets "
                                    "WHERE consumer_group = $1", s.consumer_group)
        finally:
            await conn.close()
        tracked = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return sum(max(0, end - tracked.get((tp.topic, tp.partition), 0)) for tp, end in ends.items())

    async def captured(self, deadline: float) -> bool:
        """Wait until each slot has confirmed the WAL position the server was at when called (capture has
        published everything committed before). Not `confirmed_flush_lsn >= pg_current_wal_lsn()` at one
        instant: other databases of the cluster keep writing WAL, and a slot only moves past it at its next
        heartbeat."""
        targets = {}
        for system in SYSTEMS:
            conn = await asyncpg.connect(self.settings.dsn(system))
            try:
                targets[system] = await conn.fetchval("SELECT pg_current_wal_lsn()")
            finally:
                await conn.close()
        while time.monotonic() < deadline:
            done = True
            for system in SYSTEMS:
                conn = await asyncpg.connect(self.settings.dsn(system))
                try:
                    done = done and await conn.fetchval(
                        "SELECT coalesce(bool_and(confirmed_flush_lsn >= $1), false) FROM pg_replication_slots "
                        "WHERE database = current_database()", targets[system])
                finally:
                    await conn.close()
            if done:
                return True
            await asyncio.sleep(0.5)
        return False

    async def parked(self) -> int:
        conn = await asyncpg.connect(self.settings.dsn("state"))
        try:
            return await conn.fetchval("SELECT count(*) FROM cdc.parked_events")
        finally:
            await conn.close()

    async def parked_records(self) -> set[tuple[str, str, str]]:
        """(mapping, system, key) of every record with a parked change."""
        conn = await asyncpg.connect(self.settings.dsn("state"))
        try:
            rows = await conn.fetch("SELECT DISTINCT mapping, source_system, source_key FROM cdc.parked_events")
        finally:
            await conn.close()
        return {(r["mapping"], r["source_system"], r["source_key"]) for r in rows}

    async def _retry_parked_now(self, deadline: float) -> None:
        """Make every parked change due now (what `cdc retry` does for errors) and wait until the worker's retrier
        has tried the oldest change of every record once, and the ones behind each change it released."""
        conn = await asyncpg.connect(self.settings.dsn("state"))
        try:
            forced = await conn.fetchval("UPDATE cdc.parked_events SET next_attempt_at = now() RETURNING now()")
            while forced is not None and time.monotonic() < deadline:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM cdc.parked_events p WHERE next_attempt_at <= $1 AND NOT EXISTS "
                    "(SELECT 1 FROM cdc.parked_events e WHERE e.mapping = p.mapping AND e.source_system = "
                    "p.source_system AND e.source_key = p.source_key AND e.id < p.id)", forced)
                if not waiting:
                    return
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    async def settle(self, timeout: float = 180) -> None:
        """Wait until capture has published everything, the worker has processed all of it, and every parked
        change that can sync has synced. Parked changes that remain cannot sync (their lookup is not coupled and
        will not be: a customer outside the filter, a salesperson only the CRM creates); `unaccounted()` checks
        that `cdc verify` reports each of their records as blocked."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.captured(deadline) and await self.consumer_lag() == 0:
                before = await self.parked()
                if before:
                    await self._retry_parked_now(deadline)
                after = await self.parked()
                if after == before and await self.captured(deadline) and await self.consumer_lag() == 0:
                    return
            else:
                await asyncio.sleep(0.5)
        raise AssertionError(f"did not settle in {timeout}s: lag {await self.consumer_lag()}, "
                             f"parked {await self.parked()}")

    async def unaccounted(self, verdict: dict[str, Any]) -> list[tuple[str, str, str]]:
        """Records with a parked change that `cdc verify` does not list as blocked (should be none)."""
        blocked = {(m["mapping"], b["system"], b["key"]) for m in verdict["mappings"] for b in m["blocked"]}
        return sorted(r for r in await self.parked_records() if r not in blocked)

    def verify(self) -> dict[str, Any]:
        result = self.cli("verify", "--json", check=False)
        (self.directory / "verify.json").write_text(result.stdout)
        try:
            report = json.loads(result.stdout)
        except ValueError:
            raise AssertionError(f"cdc verify --json printed no JSON (exit {result.returncode}):\n"
                                 f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}") from None
        report["exit_code"] = result.returncode
        return report

    @staticmethod
    def divergences(report: dict[str, Any]) -> str:
        """What diverges, short enough for an assertion message."""
        found = []
        for m in report.get("mappings", []):
            if m["diverges"]:
                found.append(f"{m['mapping']}: {m['counts']} differences {m['differences'][:3]} missing "
                             f"{m['missing'][:3]} duplicates {m['duplicates'][:3]} orphans {m['orphans'][:3]}")
        return "\n".join(found) or f"exit code {report.get('exit_code')}, cancelled {report.get('cancelled')}"

    async def destroy(self) -> None:
        self.stop_all()
        if os.environ.get("CDC_FAULTS_KEEP") == "1":  # to investigate a failure: the databases stay
            print(f"kept: {self.settings.erp_database} {self.settings.crm_database} "  # noqa: T201
                  f"{self.settings.state_database}")
            return
        await drop_throwaway(self.settings)
