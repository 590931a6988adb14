"""Issue #19, items 3 and 4: the local stack is closed — every PostgreSQL connection needs the password, which is
generated per installation and kept where only its owner reads it, as are the stack's data and logs — and its
logs cannot fill the disk. A cluster made by an older `cdc stack` (shared password `cdc`, `trust` on the socket)
is brought to the same rules by `cdc stack up`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from cdc.settings import Settings
from cdc.stack import password
from cdc.stack.kafka import LOG4J2, LocalKafka
from cdc.stack.postgres import PG_VERSION, LocalPostgres
from tests.fresh_stack import ROOT, fresh_home

pytestmark = pytest.mark.asyncio(loop_scope="session")
PSQL = f"/usr/lib/postgresql/{PG_VERSION}/bin/psql"
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def stack(settings: Settings) -> Iterator[tuple[Settings, dict[str, str]]]:
    with fresh_home(settings) as (fresh, env):
        up = cdc(env, "stack", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield fresh, env


def cdc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdc", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def psql(s: Settings, *, user: str | None = None, via_socket: bool = False, password_: str | None = None,
         passfile: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`psql -c 'SELECT 1'` against the stack, as another OS user when `user` is given."""
    env = {"PATH": os.environ["PATH"], "PGCONNECT_TIMEOUT": "5"}
    if password_ is not None:
        env["PGPASSWORD"] = password_
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    host = str(LocalPostgres(s).socket_dir) if via_socket else s.pg_host
    command = [PSQL, "-w", "-h", host, "-p", str(s.pg_port), "-U", s.pg_user, "-d", "postgres", "-Atc", "SELECT 1"]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_every_connection_needs_the_generated_password(stack: tuple[Settings, dict[str, str]]) -> None:
    s, _ = stack
    stored = password.read(s.home)
    assert stored and stored != password.LEGACY and len(stored) >= 24
    assert mode(password.path(s.home)) == 0o600
    assert s.local_password() == stored
    assert psql(s, passfile=password.path(s.home)).stdout.strip() == "1"
    for attempt in (psql(s), psql(s, password_="cdc"), psql(s, via_socket=True), psql(s, via_socket=True,
                                                                                      password_="cdc")):
        assert attempt.returncode != 0 and "password" in attempt.stderr, attempt.stderr
    assert psql(s, via_socket=True, passfile=password.path(s.home)).stdout.strip() == "1"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(s.model_copy(update={"pg_password": SecretStr("cdc")}).local_dsn("postgres"))


@pytest.mark.skipif(not AS_ROOT, reason="needs root to act as another local user")
async def test_another_local_user_reaches_neither_the_socket_nor_the_files(
        stack: tuple[Settings, dict[str, str]]) -> None:
    s, _ = stack
    through_socket = psql(s, user="nobody", via_socket=True)
    assert through_socket.returncode != 0, "nobody reached the server through its socket"
    assert psql(s, user="nobody").returncode != 0, "nobody got in over TCP without a password"
    postgres, kafka = LocalPostgres(s), LocalKafka(s)
    private = [password.path(s.home), postgres.root, postgres.socket_dir, postgres.log_dir, postgres.log_file,
               postgres.data_dir, kafka.root, kafka.root / "server.log", kafka.data_dir]
    for path in private:
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"
        reading = subprocess.run(["runuser", "-u", "nobody", "--", "cat" if path.is_file() else "ls", str(path)],
                                 capture_output=True, text=True, timeout=30)
        assert reading.returncode != 0, f"nobody read {path}"
    assert mode(s.home) & 0o066 == 0


async def test_the_server_log_rotates_into_a_bounded_set_of_files(stack: tuple[Settings, dict[str, str]]) -> None:
    s, _ = stack
    conn = await asyncpg.connect(s.local_dsn("postgres"))
    try:
        shown = {name: await conn.fetchval(f"SHOW {name}") for name in (
            "logging_collector", "log_truncate_on_rotation", "log_filename", "log_rotation_age",
            "log_rotation_size", "unix_socket_permissions", "log_file_mode")}
        current = await conn.fetchval("SELECT pg_current_logfile()")
    finally:
        await conn.close()
    assert shown == {"logging_collector": "on", "log_truncate_on_rotation": "on",
                     "log_filename": "postgresql-%H.log", "log_rotation_age": "1h", "log_rotation_size": "0",
                     "unix_socket_permissions": "0700", "log_file_mode": "0600"}
    assert Path(current).parent == LocalPostgres(s).log_dir
    # Kafka's log4j2: a rolling file of at most 10 MB with 3 older ones.
    kafka_config = (LocalKafka(s).root / "log4j2.properties").read_text()
    assert kafka_config == LOG4J2
    for line in ("appender.file.type = RollingFile", "appender.file.policies.size.size = 10485760",
                 "appender.file.strategy.max = 3"):
        assert line in kafka_config


async def test_a_cluster_made_with_the_shared_password_is_brought_to_the_rules(
        stack: tuple[Settings, dict[str, str]]) -> None:
    """Made legacy again (password `cdc`, `trust` on the socket, no password file), then `cdc stack up`."""
    s, env = stack
    postgres = LocalPostgres(s)
    conn = await asyncpg.connect(s.local_dsn("postgres"))
    try:
        await conn.execute(f"ALTER ROLE {s.pg_user} PASSWORD '{password.scram_verifier('cdc')}'")
        hba = postgres.data_dir / "pg_hba.conf"
        hba.write_text(re.sub(r"^(local\s+\S+\s+\S+\s+)scram-sha-256", r"\1trust", hba.read_text(), flags=re.M))
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    password.path(s.home).unlink()
    assert s.local_password() == "cdc"  # commands keep working until the next `cdc stack up`
    assert cdc(env, "db", "migrate").returncode == 0

    up = cdc(env, "stack", "up")
    assert up.returncode == 0, up.stderr
    assert "generated for this one" in up.stderr and "cdc" != password.read(s.home)
    assert psql(s, password_="cdc").returncode != 0
    assert psql(s, via_socket=True).returncode != 0
    assert "trust" not in [line.split()[3] for line in (postgres.data_dir / "pg_hba.conf").read_text().splitlines()
                           if line.startswith("local")]
    migrated = cdc(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
