"""Issue #19, item 1: no command, log line, page, metric or JSON output ever contains a password, whatever DSN
syntax carries it.

A PostgreSQL role is made with a planted password full of characters DSNs must quote or encode; every `cdc`
command (the list is checked against the commands `cdc` has) then runs with CDC_*_DSN in keyword syntax and in URL
syntax — against reachable databases (success paths) and unreachable ones (error paths) — and so do the
dashboard's pages. Every output, and every log the commands and the stack wrote meanwhile (under CDC_HOME, the
PostgreSQL server log, the broker's log), is searched for the password in any spelling: raw, percent-encoded,
JSON-escaped — all of which contain `CORE`.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
import typer.main

from cdc.cli import _register, app
from cdc.database import quote_ident
from cdc.demo.setup import apply_schema
from cdc.settings import Settings
from cdc.stack import password
from cdc.stack.kafka import LocalKafka
from tests.fresh_stack import ROOT
from tests.throwaway import drop_throwaway

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORE = f"Pl4nted-{secrets.token_hex(4)}"
PLANTED = f"{CORE}/ q'x@:#%"
PAGES = ("/topics", "/capture", "/jobs", "/errors", "/mappings", "/record?system=erp&key=C00001",
         "/jobs/00000000-0000-0000-0000-000000000000", "/metrics", "/healthz", "/readyz", "/api/snapshot",
         "/api/history", "/events?page=topics&max=1", "/events?page=errors&max=1")


def keyword_dsn(role: str, port: int, database: str) -> str:
    quoted = PLANTED.replace("\\", "\\\\").replace("'", "\\'")
    return f"host=127.0.0.1 port={port} user={role} password='{quoted}' dbname={database} application_name=planted"


def url_dsn(role: str, port: int, database: str) -> str:
    return f"postgresql://{role}:{quote(PLANTED, safe='')}@127.0.0.1:{port}/{database}?application_name=planted"


@dataclass
class World:
    settings: Settings
    role: str
    databases: dict[str, str]
    home: Path
    dashboard_port: int
    leaks: list[str] = field(default_factory=list)
    exercised: set[tuple[str, ...]] = field(default_factory=set)
    running: list[Running] = field(default_factory=list)

    def env(self, syntax: Callable[[str, int, str], str], *, port: int | None = None, **extra: str) -> dict[str, str]:
        port = self.settings.pg_port if port is None else port
        env = {**os.environ, "CDC_PG_USER": self.role, "CDC_PG_PASSWORD": PLANTED, "CDC_LOG_LEVEL": "debug",
               "CDC_TOPIC_PREFIX": f"planted{self.role[-6:]}", "CDC_CONSUMER_GROUP": f"planted-{self.role}",
               "CDC_TOPIC_PARTITIONS": "2", "CDC_DASHBOARD_PORT": str(self.dashboard_port),
               "CDC_HEARTBEAT_INTERVAL": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra}
        for role, database in self.databases.items():
            env[f"CDC_{role.upper()}_DSN"] = syntax(self.role, port, database)
            env[f"CDC_{role.upper()}_DATABASE"] = database
        return env

    def check(self, what: str, text: str | bytes) -> None:
        data = text.encode(errors="replace") if isinstance(text, str) else text
        if CORE.encode() in data:
            at = data.index(CORE.encode())
            self.leaks.append(f"{what}: …{data[max(0, at - 120):at + 60].decode(errors='replace')}…")

    def cdc(self, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        self.exercised.add(_path(args))
        done = subprocess.run([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.check(f"cdc {' '.join(args)} (exit {done.returncode})", done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        return done

    def start(self, env: dict[str, str], *args: str) -> Running:
        self.exercised.add(_path(args))
        return Running(self, args, env)


def _path(args: tuple[str, ...]) -> tuple[str, ...]:
    """The command an invocation runs: its words before the first option or argument."""
    groups = {"capture": ("reset", "status"), "demo": ("setup", "seed", "load"), "db": ("migrate",),
              "errors": ("purge",), "mappings": ("validate", "show", "schema"), "stack": ("up", "down", "status")}
    if args and args[0] in groups and len(args) > 1 and args[1] in groups[args[0]]:
        return args[:2]
    return args[:1]


class Running:
    """A long-running command, its output in a file (a pipe could fill and block it)."""

    def __init__(self, world: World, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.world, self.args = world, args
        self.out = tempfile.NamedTemporaryFile("w+", prefix="planted-", suffix=".out", delete=False)
        self.process = subprocess.Popen([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=env, stdout=self.out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        world.running.append(self)

    def text(self) -> str:
        return Path(self.out.name).read_text(errors="replace")

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None or condition(), \
                f"cdc {' '.join(self.args)} exited ({self.process.returncode}) before {what}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.text()[-3000:]}"
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self in self.world.running:
            self.world.running.remove(self)
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        text = self.text()
        Path(self.out.name).unlink(missing_ok=True)
        self.world.check(f"cdc {' '.join(self.args)}", text)
        assert "Traceback" not in text, text[-3000:]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def released(world: World) -> None:
    """Until no dashboard of an earlier command (one still shutting down) holds the port."""
    deadline = time.monotonic() + 60
    while listening(world.dashboard_port):
        assert time.monotonic() < deadline, f"port {world.dashboard_port} stays taken"
        time.sleep(0.3)


def serving(world: World, env: dict[str, str], *args: str) -> Running:
    """A command that serves the dashboard, once its own dashboard listens."""
    released(world)
    server = world.start(env, *args)
    server.wait_for(lambda: "dashboard listening" in server.text() and listening(world.dashboard_port),
                    f"cdc {' '.join(args)}'s dashboard")
    return server


def pages(world: World, server: Running, what: str) -> None:
    for page in PAGES:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{world.dashboard_port}{page}", timeout=30) as response:
                body = response.read()
        except urllib.error.HTTPError as error:  # a 404 or 503 page is a page too
            body = error.read()
        except (OSError, http.client.HTTPException) as exc:
            raise AssertionError(f"{what} {page}: {exc!r}\n{server.text()[-4000:]}") from None
        world.check(f"{what} {page}", body)


@dataclass
class Logs:
    """Where the commands and the stack log, and how much each file held before."""

    files: dict[Path, int] = field(default_factory=dict)

    @classmethod
    def taken(cls, settings: Settings, server_log: Path | None) -> Logs:
        logs = cls()
        roots = [settings.home.resolve(), LocalKafka(settings).root]
        for path in [p for root in roots for p in root.rglob("*") if p.is_file() and "libs" not in p.parts
                     and "data" not in p.parts] + ([server_log] if server_log else []):
            logs.files[path] = path.stat().st_size
        return logs

    def check_new(self, world: World, settings: Settings, server_log: Path | None) -> None:
        now = Logs.taken(settings, server_log)
        for path, size in now.files.items():
            start = self.files.get(path, 0)
            if path.name == password.FILE_NAME or size <= start and path in self.files:
                continue
            with path.open("rb") as f:
                f.seek(start if size >= start else 0)
                world.check(str(path), f.read())


@pytest.fixture(scope="module")
async def world(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tag = secrets.token_hex(3)
    role = f"cdc_planted_{tag}"
    databases = {r: f"cdc_test_planted_{tag}_{r}" for r in ("erp", "crm", "state")}
    admin = await asyncpg.connect(settings.local_dsn("postgres"))
    port = settings.dashboard_port + 200
    if listening(port):
        pytest.fail(f"port {port} for this test's dashboards is taken")
    try:
        # Set as a verifier: the password itself never reaches the server (nor its log).
        await admin.execute(f"CREATE ROLE {quote_ident(role)} LOGIN SUPERUSER PASSWORD "
                            f"'{password.scram_verifier(PLANTED)}'")
        for name in databases.values():
            await admin.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(role)}")
        world = World(settings, role, databases, tmp_path_factory.mktemp("planted"), port)
        for system in ("erp", "crm"):
            await apply_schema(url_dsn(role, settings.pg_port, databases[system]), system)  # type: ignore[arg-type]
        yield world
    finally:
        cleanup = settings.model_copy(update={
            "erp_database": databases["erp"], "crm_database": databases["crm"], "state_database": databases["state"],
            "topic_prefix": f"planted{role[-6:]}"})
        await drop_throwaway(cleanup)
        await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(role)}")
        await admin.close()


async def server_log(settings: Settings) -> Path | None:
    conn = await asyncpg.connect(settings.local_dsn("postgres"))
    try:
        current = await conn.fetchval("SELECT pg_current_logfile()")
    finally:
        await conn.close()
    return Path(current) if current else None


def every_command() -> set[tuple[str, ...]]:
    _register()
    found: set[tuple[str, ...]] = set()

    def walk(command: object, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            if getattr(command, "invoke_without_command", False):
                found.add(path)
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found.add(path)

    walk(typer.main.get_command(app), ())
    return found


def run_everything(world: World, env: dict[str, str], *, reachable: bool) -> None:
    """Every command once; what each prints is checked as it ends."""
    cdc = world.cdc
    cdc(env, "stack", "status")
    cdc(env, "stack", "up")
    cdc({**env, "CDC_HOME": str(world.home / "no-stack")}, "stack", "down")  # stops nothing of the test stack's
    cdc(env, "db", "migrate")
    cdc(env, "demo", "setup")
    cdc(env, "demo", "seed", "--customers", "12")
    cdc(env, "mappings", "validate")
    cdc(env, "mappings", "show")
    cdc(env, "mappings", "schema")
    cdc(env, "capture", "status")
    cdc(env, "full-sync", "--dry-run")
    cdc(env, "full-sync", "--yes", "--restore", "--json")
    cdc(env, "sync-modified")
    cdc(env, "sync", "--mapping", "CURRENCY")
    cdc(env, "verify", "--json")
    cdc(env, "match-couple", "--mapping", "CUSTOMER")
    cdc(env, "couple", "--mapping", "CURRENCY", "NOPE", "NOPE")
    cdc(env, "uncouple", "--mapping", "UNITOFMEASURE", "--all")
    listed = cdc(env, "jobs", "--json")
    job = json.loads(listed.stdout)[0]["id"] if reachable and listed.returncode == 0 else "0f"
    cdc(env, "jobs")
    cdc(env, "job", str(job))
    cdc(env, "errors")
    cdc(env, "errors", "--json")
    cdc(env, "errors", "purge", "--older-than", "30d")
    cdc(env, "retry", "--all")
    cdc(env, "retry", "999999")
    cdc(env, "skip", "999999")
    cdc(env, "resolve", "999999", "--keep", "erp", "--wait", "0")
    cdc(env, "parked")
    cdc(env, "status")
    cdc(env, "status", "--json")
    cdc(env, "check")
    cdc(env, "demo", "load", "--rate", "5", "--duration", "2")

    capture = world.start(env, "capture")
    if reachable:
        progress = world.settings.home / "capture"
        capture.wait_for(lambda: len(list(progress.glob(f"{env['CDC_TOPIC_PREFIX']}_*.json"))) >= 2,
                         "capture's progress files")
    else:
        capture.wait_for(lambda: capture.process.poll() is not None, "capture to give up")
    capture.stop()
    cdc(env, "capture", "reset", "--system", "crm", "--yes")

    worker = world.start(env, "worker")
    worker.wait_for(lambda: "worker started" in worker.text() if reachable else worker.process.poll() is not None,
                    "the worker")
    worker.stop()

    dashboard = serving(world, env, "dashboard")
    pages(world, dashboard, "dashboard page")
    dashboard.stop()

    service = serving(world, env, "run")
    pages(world, service, "cdc run's dashboard page")
    service.stop()

    released(world)
    demo = world.start(env, "demo", "--customers", "12")
    if reachable:
        demo.wait_for(lambda: "live." in demo.text(), "the demo to go live")
        pages(world, demo, "the demo's dashboard page")
    else:
        demo.wait_for(lambda: demo.process.poll() is not None, "the demo to give up")
    demo.stop(signal.SIGINT)


@pytest.fixture()
def watched(world: World) -> Iterator[None]:
    world.leaks.clear()
    try:
        yield
    finally:
        for left in list(world.running):  # a failed test's long-running commands
            left.stop()
    assert not world.leaks, "the planted password was printed:\n" + "\n".join(world.leaks)


@pytest.mark.parametrize("syntax", [keyword_dsn, url_dsn], ids=["keyword", "url"])
@pytest.mark.parametrize("reachable", [True, False], ids=["reachable", "unreachable"])
async def test_no_command_page_or_log_shows_the_password(world: World, watched: None, syntax: Callable[..., str],
                                                          reachable: bool) -> None:
    log = await server_log(world.settings)
    before = Logs.taken(world.settings, log)
    env = world.env(syntax, port=None if reachable else 1)
    run_everything(world, env, reachable=reachable)
    before.check_new(world, world.settings, await server_log(world.settings) or log)
    assert world.exercised == every_command(), every_command() ^ world.exercised


async def test_an_unparsable_dsn_stops_every_command_in_one_line_without_it(world: World, watched: None) -> None:
    """The settings refuse it before anything runs (so `stack down` stops nothing either)."""
    env = world.env(lambda role, port, database: f"postgresql://{role}:{PLANTED}@127.0.0.1:{port}/{database}")
    for command in sorted(every_command()):
        done = world.cdc(env, *command, timeout=60)
        assert done.returncode == 2, (command, done.stderr)
        assert [line.split(":")[1].strip() for line in done.stderr.strip().splitlines()] == \
            ["CDC_ERP_DSN", "CDC_CRM_DSN", "CDC_STATE_DSN"], done.stderr
