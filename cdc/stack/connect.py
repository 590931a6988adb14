"""Kafka Connect (standalone) with the stock Debezium PostgreSQL connector, beside the local stack.

For trying the sync behind a Debezium deployment on one machine (docs/debezium.md) and for the integration test
that does exactly that. Everything comes from Maven Central, as the broker does: the Connect runtime's jars
(compose/connect/pom.xml) into `CDC_HOME/connect/libs`, the connector's plugin archive
(`io.debezium:debezium-connector-postgres:<version>:tar.gz:plugin`) unpacked into `CDC_HOME/connect/plugins`;
both are fetched again only when the pom changes.

    python -m cdc.stack.connect fetch | up | down | status      (scripts/connect.sh does the same)

Connectors are created through Connect's REST API (`CDC_CONNECT_PORT`), e.g. with `postgres_connector(...)`.
The worker uses the JsonConverter with its defaults (schemas embedded), as a stock deployment does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cdc.pair import System
from cdc.settings import Settings
from cdc.stack.process import Background, StackError, apt_install, java_command, rolling_log4j2, run

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "compose" / "connect" / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CONNECTOR_ARTIFACT = "io.debezium:debezium-connector-postgres"
CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"

LOG4J2 = rolling_log4j2("${sys:connect.log.file}", {"org.reflections": "ERROR"})


def debezium_version() -> str:
    """The connector's version, from the pom (one place to change it)."""
    found = re.search(r"<debezium.version>([^<]+)</debezium.version>", POM.read_text())
    if found is None:
        raise StackError(f"{POM}: no <debezium.version> property")
    return found.group(1)


class LocalConnect:
    """One standalone Connect worker: its jars, its process (pid file, log) and its REST API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home.resolve() / "connect"
        self.libs = self.root / "libs"
        self.plugins = self.root / "plugins"
        self.pid_file = self.root / "connect.pid"
        self.process = Background(self.pid_file)
        self.log_file = self.root / "connect.log"
        self.out_file = self.root / "connect.out"
        self.config = self.root / "worker.properties"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.connect_port}"

    # -------------------------------------------------------------------------------------------- jars

    def ensure_jars(self) -> None:
        """The runtime jars and the connector plugin, fetched with Maven when the pom changed (or never ran)."""
        if not POM.exists():
            raise StackError(f"{POM} not found: run from a checkout of the repository")
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        marker = self.root / ".pom-sha256"
        if marker.exists() and marker.read_text() == digest and self.libs.is_dir() and self.plugins.is_dir():
            return
        if shutil.which("java") is None:
            apt_install("openjdk-17-jre-headless")
        if shutil.which("mvn") is None:
            apt_install("maven")
        for folder in (self.libs, self.plugins, self.root / "download"):
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        run(["mvn", "-B", "-q", "-f", str(POM), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={self.libs}"], timeout=900)
        artifact = f"{CONNECTOR_ARTIFACT}:{debezium_version()}:tar.gz:plugin"
        run(["mvn", "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact}",
             f"-DoutputDirectory={self.root / 'download'}"], timeout=900)
        # the "data" filter (no links out, no devices) where Python has it (3.11.4 and later)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        for archive in (self.root / "download").glob("*.tar.gz"):
            with tarfile.open(archive) as tar:
                tar.extractall(self.plugins, **safe)  # type: ignore[arg-type]
        shutil.rmtree(self.root / "download")
        marker.write_text(digest)

    # -------------------------------------------------------------------------------------------- process

    def pid(self) -> int | None:
        return self.process.pid()

    def start(self) -> None:
        """Start the worker (after fetching what is missing) unless it runs; `wait_ready` tells when it answers.
        Its offsets file is kept across restarts: a connector created again resumes where it stopped."""
        if self.pid() is not None:
            return
        self.ensure_jars()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # offsets, logs and the connectors' secrets
        properties = {
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "offset.storage.file.filename": str(self.root / "offsets.dat"),
            "offset.flush.interval.ms": "1000",
            "plugin.path": str(self.plugins),
            "plugin.discovery": "service_load",  # scanning every jar takes 20 s on a busy machine
            "listeners": self.url,
            # connectors name their passwords as ${file:<secrets file>:<key>}: the REST API shows the reference
            "config.providers": "file",
            "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.root / "log4j2.properties").write_text(LOG4J2)
        command = java_command(self.settings.connect_heap, self.libs, "org.apache.kafka.connect.cli.ConnectStandalone",
                               str(self.config), properties={
                                   "connect.log.file": str(self.log_file),
                                   "log4j2.configurationFile": str(self.root / "log4j2.properties")})
        self.process.spawn(command, self.out_file, self.root)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Connect flushes its offsets), SIGKILL after `timeout` seconds."""
        self.process.stop(timeout)

    async def wait_ready(self, timeout: float) -> None:
        """Until the REST API answers (plugins loaded); StackError naming the log when it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            try:
                await asyncio.to_thread(self.request, "GET", "/connector-plugins")
                return
            except (OSError, StackError):
                await asyncio.sleep(0.5)
        raise StackError(f"Kafka Connect on {self.url} does not answer: see {self.log_file} and {self.out_file}")

    # -------------------------------------------------------------------------------------------- REST

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call; the JSON answer (None when empty). StackError with Connect's message on an error."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                text = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except ValueError:
                pass
            raise StackError(f"Kafka Connect {method} {path}: {exc.code} {detail}") from None
        return json.loads(text) if text.strip() else None

    def put_connector(self, name: str, config: dict[str, str]) -> None:
        """Create the connector, or change its configuration."""
        self.request("PUT", f"/connectors/{name}/config", config)

    def delete_connector(self, name: str) -> None:
        try:
            self.request("DELETE", f"/connectors/{name}")
        except StackError as exc:
            if " 404 " not in str(exc):
                raise

    def connector_state(self, name: str) -> tuple[str, list[str]]:
        """(the connector's state, each task's state, with the trace's first line when a task failed)."""
        status = self.request("GET", f"/connectors/{name}/status")
        tasks = [t["state"] + (f": {t['trace'].splitlines()[0]}" if t.get("trace") else "")
                 for t in status.get("tasks", [])]
        return status["connector"]["state"], tasks

    async def wait_running(self, name: str, timeout: float) -> None:
        """Until the connector and its task run; StackError with the task's failure when one fails."""
        deadline = time.monotonic() + timeout
        state, tasks = "UNKNOWN", list[str]()
        while time.monotonic() < deadline:
            try:
                state, tasks = await asyncio.to_thread(self.connector_state, name)
            except StackError:
                state, tasks = "UNKNOWN", []
            failed = [t for t in tasks if t.startswith("FAILED")]
            if state == "FAILED" or failed:
                raise StackError(f"connector {name} failed: {failed[0] if failed else state} (see {self.log_file})")
            if state == "RUNNING" and tasks and all(t == "RUNNING" for t in tasks):
                return
            await asyncio.sleep(0.5)
        raise StackError(f"connector {name} is {state} after {timeout:.0f} s, tasks {tasks} (see {self.log_file})")


def connector_secret(settings: Settings, key: str, value: str) -> str:
    """Keep `value` in the local Connect's secrets file (its owner's only) and return the reference a connector's
    configuration holds instead: Connect resolves it when the connector starts, and its REST API, open to every
    local user, shows only the reference."""
    secrets = settings.home.resolve() / "connect" / "secrets.properties"
    secrets.parent.mkdir(parents=True, exist_ok=True)
    held = secrets.read_text().splitlines() if secrets.exists() else []
    lines = [line for line in held if not line.startswith(f"{key}=")] + [f"{key}={_escaped(value)}"]
    secrets.touch(mode=0o600, exist_ok=True)
    secrets.chmod(0o600)
    secrets.write_text("\n".join(lines) + "\n")
    return f"${{file:{secrets}:{key}}}"


def _escaped(value: str) -> str:
    """A value as java.util.Properties reads it back."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = "".join(c if c not in "=:#!" else "\\" + c for c in out)
    return "\\ " + out[1:] if out.startswith(" ") else out


def postgres_connector(settings: Settings, system: System, *, topic_prefix: str, slot: str,
                       tables: list[str], **overrides: str) -> dict[str, str]:
    """A stock Debezium PostgreSQL connector on `system`'s database: pgoutput, its own slot and a publication of
    the mapped `tables` ("schema.table"), topics `<topic_prefix>.<schema>.<table>`, every encoding at Debezium's
    defaults. `overrides` are further connector settings (e.g. decimal.handling.mode)."""
    dsn = urlsplit(settings.dsn(system))
    password = unquote(dsn.password or settings.pg_password.get_secret_value())
    config = {
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": dsn.hostname or settings.pg_host,
        "database.port": str(dsn.port or 5432),
        "database.user": unquote(dsn.username or settings.pg_user),
        "database.password": connector_secret(settings, f"{system}.password", password),
        "database.dbname": unquote(dsn.path.lstrip("/")),
        "topic.prefix": topic_prefix,
        "slot.name": slot,
        "publication.name": f"{slot}_publication",
        "publication.autocreate.mode": "filtered",
        "table.include.list": ",".join(re.escape(t) for t in tables),
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": str(settings.topic_partitions),
    }
    return {**config, **overrides}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    connect = LocalConnect(Settings())
    if command == "fetch":
        connect.ensure_jars()
        print(f"Kafka Connect and {CONNECTOR_ARTIFACT} {debezium_version()} in {connect.root}")
    elif command == "up":
        connect.start()
        asyncio.run(connect.wait_ready(connect.settings.stack_timeout))
        print(f"Kafka Connect answers on {connect.url} (pid {connect.pid()}, log {connect.log_file})")
    elif command == "down":
        connect.stop()
        print("Kafka Connect stopped")
    elif command == "status":
        pid = connect.pid()
        print(f"Kafka Connect: {'pid ' + str(pid) if pid else 'stopped'}, {connect.url}")
        if pid:
            for name in connect.request("GET", "/connectors") or []:
                state, tasks = connect.connector_state(name)
                print(f"  {name}: {state}, tasks {tasks}")
        return 0 if pid else 1
    else:
        print(__doc__.split("\n\n")[2].strip())
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)
