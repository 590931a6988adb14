"""The local PostgreSQL 15 cluster: Debian's server, a data directory under CDC_HOME, run as `postgres`."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from pydantic import SecretStr

from cdc.database import quote_ident
from cdc.settings import Settings
from cdc.stack import password
from cdc.stack.process import StackError, apt_install, is_root, make_reachable, os_user_exists, pid_alive, run

log = structlog.get_logger(component="stack")

PG_VERSION = "15"
CLOSED_MARK = "# cdc stack: closed and bounded"
_LOCAL_TRUST = re.compile(r"^(local\s+\S+\s+\S+\s+)trust\b", re.MULTILINE)
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
        self.log_file = self.root / "postgres.log"  # what the server says before its logging collector runs
        self.log_dir = self.root / "log"  # the collector's hourly files
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
        secret = (self.settings.pg_password.get_secret_value() if self.settings.pg_password is not None
                  else password.ensure(self.settings.home))
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pw:  # mode 0600
            pw.write(secret + "\n")
        pwfile = Path(pw.name)
        self._chown(pwfile)
        try:
            # Every connection needs the password, the socket's too: any local user can reach a socket.
            run([str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.settings.pg_user,
                 f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
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

    def _configure_closed(self) -> None:
        """Settings a cluster made by an older `cdc stack` lacks too (appended once; they apply from its next
        start): the socket for its owner only, and a server log that cannot fill the disk — the logging collector
        writes one file per hour of the day into `log/`, and truncates it when that hour comes round again."""
        conf = self.data_dir / "postgresql.conf"
        if CLOSED_MARK in conf.read_text():
            return
        lines = [
            "unix_socket_permissions = 0700",
            "logging_collector = on",
            f"log_directory = '{self.log_dir}'",
            "log_filename = 'postgresql-%H.log'",
            "log_file_mode = 0600",
            "log_rotation_age = 60",
            "log_rotation_size = 0",
            "log_truncate_on_rotation = on",
        ]
        with conf.open("a") as f:
            f.write(f"\n{CLOSED_MARK}\n" + "\n".join(lines) + "\n")

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

    def _restrict(self) -> None:
        """The cluster's directory, socket directory and log readable by their owner only (`postgres`), also for
        a cluster made before they were; CDC_HOME itself stays traversable for `postgres`."""
        make_reachable(self.root, OS_USER)
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)
        for path, mode in ((self.root, 0o700), (self.socket_dir, 0o700), (self.log_file, 0o600)):
            path.chmod(mode)

    def start(self) -> None:
        self.initialise()
        self._restrict()
        self._configure_closed()
        if self.pid() is not None:
            return
        self._allow_replication()
        # Address and port from the settings on every start, so a changed CDC_PG_PORT takes effect.
        options = f"-p {self.settings.pg_port} -c listen_addresses={self.settings.pg_host}"
        run([str(self.bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
             "-o", options, "start"], as_user=self._user(), check=False, timeout=90)
        if self.pid() is None:
            raise StackError(f"PostgreSQL did not start on {self.address}: see {self.log_file} and {self.log_dir}")

    def stop(self) -> None:
        if self.pid() is None:
            return
        run([str(self.bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
            as_user=self._user(), check=False, timeout=90)

    async def answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.settings.local_dsn("postgres"), timeout=3)
        except asyncpg.InvalidAuthorizationSpecificationError:
            return True  # it answers; whose password it takes is `harden`'s business
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
        raise StackError(f"PostgreSQL on {self.address} does not answer: see {self.log_file} and {self.log_dir}")

    async def harden(self) -> None:
        """Bring a cluster made by an older `cdc stack` to this one's rules: socket connections need the password
        (its pg_hba.conf said `trust`), and the password shared by every installation (`cdc`) is replaced by one
        generated for this one (when CDC_PG_PASSWORD does not set it). Sets it as a SCRAM verifier, so the
        password itself never reaches the server (nor its log)."""
        s = self.settings
        reload = self._require_local_passwords()
        created = s.pg_password is None and password.read(s.home) is None
        expected = s.local_password() if s.pg_password is not None else password.ensure(s.home)
        try:
            conn = await asyncpg.connect(s.local_dsn("postgres"), timeout=10)
        except asyncpg.InvalidAuthorizationSpecificationError:
            conn = await self._connect_as_before(created)
            verifier = password.scram_verifier(expected)
            await conn.execute(f"ALTER ROLE {quote_ident(s.pg_user)} PASSWORD '{verifier}'")
            log.warning(
                "the local cluster's password was the default every installation shared: it is now generated "
                "for this one", kept_in=str(password.path(s.home)))
        try:
            if reload:
                await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def _connect_as_before(self, created: bool) -> asyncpg.Connection:
        s = self.settings
        hint = (f"CDC_PG_PASSWORD is not the password of the local cluster at {self.address}"
                if s.pg_password is not None else
                f"the local cluster at {self.address} takes neither the password in {password.path(s.home)} nor "
                "the old default: set CDC_PG_PASSWORD to the password it was initialised with")
        if s.pg_password is not None:
            raise StackError(hint)
        legacy = s.model_copy(update={"pg_password": SecretStr(password.LEGACY)})
        try:
            return await asyncpg.connect(legacy.local_dsn("postgres"), timeout=10)
        except asyncpg.InvalidAuthorizationSpecificationError:
            if created:
                password.path(s.home).unlink(missing_ok=True)
            raise StackError(hint) from None

    def _require_local_passwords(self) -> bool:
        """pg_hba.conf's `local` lines with `trust` become `scram-sha-256`; whether anything changed."""
        hba = self.data_dir / "pg_hba.conf"
        text = hba.read_text()
        required = _LOCAL_TRUST.sub(r"\1scram-sha-256", text)
        if required != text:
            hba.write_text(required)
        return required != text

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
                              address=self.address, pid=pid, data_dir=self.data_dir, log_file=self.log_dir)


def psql_command(settings: Settings) -> str:
    """How a user runs psql on the local cluster, to print: it names where the password is, never the password."""
    where = (f"PGPASSFILE={password.path(settings.home)}" if settings.pg_password is None
             else 'PGPASSWORD="$CDC_PG_PASSWORD"')
    return f"{where} psql -h {settings.pg_host} -p {settings.pg_port} -U {settings.pg_user}"
