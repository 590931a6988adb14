"""The local Kafka broker: Apache Kafka 4.x in KRaft combined mode, assembled from Maven Central jars.

Its log (`server.log`) rolls at 10 MB and keeps three older files (`process.rolling_log4j2`): at most 40 MB."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdc.settings import Settings
from cdc.stack.process import Background, StackError, apt_install, java_command, rolling_log4j2, run

REPO_ROOT = Path(__file__).resolve().parents[2]
OFFSETS_TOPIC = "__consumer_offsets"
POM = REPO_ROOT / "compose" / "kafka" / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

LOG4J2 = rolling_log4j2("${sys:kafka.logs.dir}/server.log", {"kafka": "INFO", "org.apache.kafka": "INFO"})


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    answering: bool
    address: str
    pid: int | None
    log_file: Path


class LocalKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home.resolve() / "kafka"
        self.libs = self.root / "libs"
        self.data_dir = self.root / "data"
        self.pid_file = self.root / "kafka.pid"
        self.process = Background(self.pid_file)
        self.log_file = self.root / "kafka.out"
        self.config = self.root / "server.properties"

    @property
    def address(self) -> str:
        return self.settings.kafka_bootstrap

    def _host_port(self) -> tuple[str, int]:
        host, _, port = self.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)

    def ensure_jars(self) -> None:
        """Gather the broker's runtime jars with Maven (cached in ~/.m2 and keyed by the pom's hash)."""
        if not POM.exists():
            raise StackError(f"{POM} not found: run the stack from a checkout of the repository")
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        marker = self.libs / ".pom-sha256"
        if marker.exists() and marker.read_text() == digest:
            return
        if shutil.which("java") is None:
            apt_install("openjdk-17-jre-headless")
        if shutil.which("mvn") is None:
            apt_install("maven")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.mkdir(parents=True)
        run(["mvn", "-B", "-q", "-f", str(POM), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={self.libs}"], timeout=900)
        marker.write_text(digest)

    def _write_config(self) -> None:
        host, port = self._host_port()
        controller = self.settings.kafka_controller_port
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{controller}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.settings.topic_partitions),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.root / "log4j2.properties").write_text(LOG4J2)

    def _cluster_id(self) -> str:
        path = self.root / "cluster.id"
        if not path.exists():
            path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        return path.read_text().strip()

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return java_command(heap, self.libs, main, *args, properties={
            "kafka.logs.dir": str(self.root), "log4j2.configurationFile": str(self.root / "log4j2.properties")})

    def pid(self) -> int | None:
        return self.process.pid()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # topics hold the systems' records; logs too
        if self.pid() is not None:
            return
        self.ensure_jars()
        self._write_config()
        run(self._java("kafka.tools.StorageTool", "format", "-t", self._cluster_id(), "-c", str(self.config),
                       "--ignore-formatted"), timeout=120)
        self.process.spawn(self._java("kafka.Kafka", str(self.config), heap=self.settings.kafka_heap),
                           self.log_file, self.root)

    def stop(self, timeout: float = 30) -> None:
        self.process.stop(timeout)

    async def answers(self, *, groups: bool = False) -> bool:
        """Whether the broker answers a metadata request; with `groups`, whether it also serves consumer groups."""
        from aiokafka.admin import AIOKafkaAdminClient

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
            if not cluster.get("brokers"):
                return False
            return not groups or await asyncio.wait_for(_serves_groups(admin, self.settings.consumer_group), 5)
        except Exception:
            return False
        finally:
            try:
                await admin.close()
            except Exception:
                pass

    async def wait_ready(self, timeout: float) -> None:
        """Until the broker serves consumer groups: a fresh broker answers metadata requests seconds before it
        does (the first group request creates `__consumer_offsets`, whose partitions must be led and loaded),
        and a command run meanwhile would meet "coordinator not available"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None and self.pid_file.exists():
                break
            if await self.answers(groups=True):
                return
            await asyncio.sleep(0.5)
        raise StackError(f"Kafka on {self.address} does not answer (or serve consumer groups): see "
                         f"{self.root / 'server.log'} and {self.log_file}")

    async def status(self) -> KafkaStatus:
        pid = self.pid()
        return KafkaStatus(running=pid is not None, answering=pid is not None and await self.answers(),
                           address=self.address, pid=pid, log_file=self.root / "server.log")


async def _serves_groups(admin: Any, group: str) -> bool:
    """The group coordinator answers for `group` and every partition of `__consumer_offsets` has a leader."""
    described = await admin.describe_consumer_groups([group])  # creates __consumer_offsets on a fresh broker
    if any(g["error_code"] for response in described for g in response.to_object()["groups"]):
        return False
    topics = await admin.describe_topics([OFFSETS_TOPIC])
    partitions = [p for t in topics if t["topic"] == OFFSETS_TOPIC and not t["error_code"] for p in t["partitions"]]
    return bool(partitions) and all(p["error_code"] == 0 and p["leader"] >= 0 for p in partitions)
