"""The local PostgreSQL 15 cluster: Debian's server, a data directory under CDC_HOME, run as `postgres`."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cdc.database import quote_ident
from cdc.settings import Settings
from cdc.stack.process import StackError, apt_install, is_root, make_reachable, os_user_exists, pid_alive, run

PG_VERSION = "15"
OS_USER = "postgres"


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    answering: bool
    address: str
    pid: int | None
    data_dir: Path
    log_file: Path


class LocalPostgres:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home.resolve() / "postgres"
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.socket_dir = self.root / "run"

    @property
    def address(self) -> str:
        return f"{self.settings.pg_host}:{self.settings.pg_port}"

    def bindir(self) -> Path:
        path = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
        if not (path / "postgres").exists():
            apt_install(f"postgresql-{PG_VERSION}")
        if not (path / "postgres").exists():
            raise StackError(f"PostgreSQL {PG_VERSION} server not found in {path}")
        return path

    def _user(self) -> str | None:
        return OS_USER if is_root() else None

    def _chown(self, path: Path) -> None:
        if is_root():
            shutil.chown(path, OS_USER, OS_USER)

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if is_root() and not os_user_exists(OS_USER):
            apt_install(f"postgresql-{PG_VERSION}")
        bindir = self.bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        make_reachable(self.root, OS_USER)
        self._chown(self.root)
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.socket_dir)
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pw:
            pw.write(self.settings.pg_password.get_secret_value() + "\n")
        pwfile = Path(pw.name)
        self._chown(pwfile)
        try:
            run([str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.settings.pg_user,
                 f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--locale=C.UTF-8"], as_user=self._user())
        finally:
            pwfile.unlink(missing_ok=True)
        self._configure(bindir)

    def _configure(self, bindir: Path) -> None:
        lines = [
            f"port = {self.settings.pg_port}",
            f"listen_addresses = '{self.settings.pg_host}'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "wal_level = logical",
            "max_replication_slots = 32",
            "max_wal_senders = 16",
            "max_slot_wal_keep_size = '8GB'",
            "max_connections = 200",
            "max_locks_per_transaction = 256",  # a batch takes up to ~2 advisory locks per record
            "shared_buffers = '256MB'",
            "work_mem = '16MB'",
            "max_wal_size = '2GB'",
            "logical_decoding_work_mem = '64MB'",
            "track_commit_timestamp = on",
        ]
        # Debian's PostgreSQL >= 15.19 loads only the output plugins listed here; older builds lack the setting.
        probe = run([str(bindir / "postgres"), "-D", str(self.data_dir), "-C", "output_plugin_libraries"],
                    as_user=self._user(), check=False)
        if probe.returncode == 0:
            lines.append("output_plugin_libraries = 'pgoutput', 'test_decoding'")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write("\n# cdc stack\n" + "\n".join(lines) + "\n")

    def _allow_replication(self) -> None:
        """Capture streams over replication connections, which pg_hba.conf admits only by lines whose database
        field is `replication` (`all` does not match them). initdb writes such lines for loopback; this adds one
        for the address the cluster listens on when none is there (read at the next start)."""
        hba = self.data_dir / "pg_hba.conf"
        lines = [line.split() for line in hba.read_text().splitlines() if line.strip() and not line.startswith("#")]
        if any(fields[0] == "host" and fields[1] == "replication" for fields in lines if len(fields) > 2):
            return
        mask = "128" if ":" in self.settings.pg_host else "32"
        with hba.open("a") as f:
            f.write(f"\n# cdc stack: capture's replication connections\n"
                    f"host replication {self.settings.pg_user} {self.settings.pg_host}/{mask} scram-sha-256\n")

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> None:
        self.initialise()
        if self.pid() is not None:
            return
        self._allow_replication()
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)
        # Address and port from the settings on every start, so a changed CDC_PG_PORT takes effect.
        options = f"-p {self.settings.pg_port} -c listen_addresses={self.settings.pg_host}"
        run([str(self.bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
             "-o", options, "start"], as_user=self._user(), check=False, timeout=90)
        if self.pid() is None:
            raise StackError(f"PostgreSQL did not start on {self.address}: see {self.log_file}")

    def stop(self) -> None:
        if self.pid() is None:
            return
        run([str(self.bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
            as_user=self._user(), check=False, timeout=90)

    async def answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.settings.local_dsn("postgres"), timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        try:
            return await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.answers():
                return
            if self.pid() is None:
                break
            await asyncio.sleep(0.3)
        raise StackError(f"PostgreSQL on {self.address} does not answer: see {self.log_file}")

    async def create_databases(self) -> None:
        s = self.settings
        conn = await asyncpg.connect(s.local_dsn("postgres"), timeout=10)
        try:
            existing = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for name in (s.erp_database, s.crm_database, s.state_database):
                if name not in existing:
                    await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
            if not await conn.fetchval("SELECT rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user"):
                # capture's replication connections (superuser alone would do; this survives a demotion)
                await conn.execute(f"ALTER ROLE {quote_ident(s.pg_user)} REPLICATION")
        finally:
            await conn.close()

    async def status(self) -> PostgresStatus:
        pid = self.pid()
        return PostgresStatus(running=pid is not None, answering=pid is not None and await self.answers(),
                              address=self.address, pid=pid, data_dir=self.data_dir, log_file=self.log_file)


def environment_for_psql(settings: Settings) -> dict[str, str]:
    return {**os.environ, "PGHOST": settings.pg_host, "PGPORT": str(settings.pg_port),
            "PGUSER": settings.pg_user, "PGPASSWORD": settings.pg_password.get_secret_value()}
