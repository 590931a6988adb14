"""`cdc db migrate`, `cdc jobs`, `cdc job`, `cdc errors`, `cdc retry`, `cdc skip` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cdc.settings import Settings
from cdc.state import couplings, job_errors, jobs, migrate, parking

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass(frozen=True)
class StateDb:
    name: str
    dsn: str
    env: dict[str, str]

    def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def go() -> T:
            conn = await asyncpg.connect(self.dsn)
            try:
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(go())


def dsn_of(settings: Settings, database: str) -> str:
    return urlunsplit(urlsplit(settings.dsn("state"))._replace(path=f"/{database}"))


def admin(settings: Settings, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn_of(settings, "postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture
def state_db(settings: Settings) -> Iterator[StateDb]:
    """A throwaway, empty state database, and the environment that points `cdc` at it."""
    name = f"cdc_test_state_{secrets.token_hex(4)}"
    admin(settings, f'CREATE DATABASE "{name}"')
    env = {**os.environ, "COLUMNS": "200", "CDC_STATE_DATABASE": name}
    if "CDC_STATE_DSN" in env:
        env["CDC_STATE_DSN"] = dsn_of(settings, name)
    try:
        yield StateDb(name, dsn_of(settings, name), env)
    finally:
        admin(settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated(state_db: StateDb) -> StateDb:
    state_db.run(migrate.migrate)
    return state_db


def cdc(db: StateDb, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdc", *args], cwd=ROOT, env=env or db.env, text=True,
                          capture_output=True, timeout=60)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def seed(db: StateDb) -> tuple[jobs.Job, job_errors.JobError]:
    """A finished full-sync job of CUSTOMER with one failed record: coupled, skipped, its event stored."""

    async def work(conn: asyncpg.Connection) -> tuple[jobs.Job, job_errors.JobError]:
        job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
        await jobs.add_counts(conn, job.id, {"inserted": 4, "failed": 1})
        await jobs.finish_job(conn, job.id, "failed", "1 record failed")
        await couplings.couple(conn, "CUSTOMER", "10000", "c-1")
        for _ in range(2):
            await couplings.mark_failure(conn, "CUSTOMER", "10000", "to_crm", "credit limit exceeds 1e9")
        error = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "10000", "crm", "c-1",
                                              "credit limit exceeds 1e9", "numeric field overflow",
                                              {"op": "u", "key": "10000", "after": {"credit_limit": 1e12}})
        return await jobs.get_job(conn, job.id), error

    return db.run(work)


def test_migrate_then_everything_is_empty(state_db: StateDb) -> None:
    first = ok(cdc(state_db, "db", "migrate"))
    assert "applied 0001_initial" in first
    assert f"{state_db.name} is at version" in first
    again = ok(cdc(state_db, "db", "migrate"))
    assert "applied" not in again and "is at version" in again
    assert json.loads(ok(cdc(state_db, "jobs", "--json"))) == []
    assert json.loads(ok(cdc(state_db, "errors", "--json"))) == []
    assert ok(cdc(state_db, "errors", "--open")).strip() == "no open errors"


def test_commands_before_migrate_say_what_to_do(state_db: StateDb) -> None:
    result = cdc(state_db, "jobs")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the state database lacks migrations 0001_initial, "
                                     "0002_coupling_intents, 0003_error_states, 0004_update_intents, "
                                     "0005_coupling_hot_updates, 0006_conflicts_and_resolutions: run `cdc db migrate`")


def test_an_unreachable_state_database_is_one_line(state_db: StateDb) -> None:
    env = {k: v for k, v in state_db.env.items() if k != "CDC_STATE_DSN"}
    result = cdc(state_db, "errors", env={**env, "CDC_PG_HOST": "127.0.0.1", "CDC_PG_PORT": "1"})
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: state database at 127.0.0.1:1/{state_db.name} is unreachable")


def test_jobs_and_one_job_by_id_prefix_with_its_errors(migrated: StateDb) -> None:
    job, error = seed(migrated)
    listed = json.loads(ok(cdc(migrated, "jobs", "--json")))
    assert [(j["id"], j["status"], j["inserted"], j["failed"]) for j in listed] == [
        (str(job.id), "failed", 4, 1)]
    assert json.loads(ok(cdc(migrated, "jobs", "--json", "--kind", "live"))) == []
    assert json.loads(ok(cdc(migrated, "jobs", "--json", "--mapping", "CONTACTS"))) == []
    table = ok(cdc(migrated, "jobs"))
    assert str(job.id)[:8] in table and "ins 4 fail 1" in table

    shown = ok(cdc(migrated, "job", str(job.id)[:8]))
    assert str(job.id) in shown and "1 record failed" in shown
    assert "credit limit exceeds 1e9" in shown and "erp:10000" in shown
    detail = json.loads(ok(cdc(migrated, "job", str(job.id)[:6], "--json")))
    assert (detail["inserted"], detail["failed"], [e["id"] for e in detail["errors"]]) == (4, 1, [error.id])

    missing = cdc(migrated, "job", "0" * 32 if str(job.id)[0] != "0" else "f" * 32)
    assert missing.returncode == 1 and "no job matches" in missing.stderr
    assert cdc(migrated, "job", "not-hex").returncode == 2


def test_errors_list_open_ones(migrated: StateDb) -> None:
    _, error = seed(migrated)
    listed = json.loads(ok(cdc(migrated, "errors", "--open", "--json")))
    assert [(e["id"], e["state"], e["source_key"], e["event"]["key"]) for e in listed] == [
        (error.id, "open", "10000", "10000")]
    table = ok(cdc(migrated, "errors", "--open"))
    assert "credit limit exceeds 1e9" in table and "crm:c-1" in table


def test_retry_requeues_the_event_and_unskips_the_record(migrated: StateDb) -> None:
    _, error = seed(migrated)
    assert migrated.run(lambda c: couplings.fetch_one(c, "CUSTOMER", "erp", "10000")).skipped
    out = ok(cdc(migrated, "retry", str(error.id)))
    assert "retried 1 error(s); 1 event(s) queued for the worker" in out

    async def state(conn: asyncpg.Connection) -> tuple[Any, ...]:
        return (await job_errors.get_error(conn, error.id),
                await couplings.fetch_one(conn, "CUSTOMER", "erp", "10000"),
                await parking.due(conn, datetime.now(UTC)))

    retried, coupling, due = migrated.run(state)
    assert retried.state == "retried"
    assert (coupling.skipped, coupling.failure_count) == (False, 0)
    assert [(p.system, p.key, p.event) for p in due] == [("erp", "10000", error.event)]
    assert json.loads(ok(cdc(migrated, "errors", "--open", "--json"))) == []
    assert "no open errors to retry" in ok(cdc(migrated, "retry", "--all"))

    unknown = cdc(migrated, "retry", "999999")
    assert unknown.returncode == 1 and "no error #999999" in unknown.stderr
    assert cdc(migrated, "retry").returncode == 2  # a usage error, as everywhere


def test_retry_all_takes_every_open_error(migrated: StateDb) -> None:
    _, error = seed(migrated)
    out = ok(cdc(migrated, "retry", "--all"))
    assert "retried 1 error(s)" in out
    assert migrated.run(lambda c: job_errors.get_error(c, error.id)).state == "retried"


def test_skip_ignores_the_error_and_skips_the_record(migrated: StateDb) -> None:
    _, error = seed(migrated)
    migrated.run(lambda c: couplings.clear_skipped(c, "CUSTOMER"))
    out = ok(cdc(migrated, "skip", str(error.id)))
    assert f"error #{error.id} ignored" in out and "skipped until `cdc retry`" in out
    assert migrated.run(lambda c: job_errors.get_error(c, error.id)).state == "ignored"
    assert migrated.run(lambda c: couplings.fetch_one(c, "CUSTOMER", "crm", "c-1")).skipped
    assert cdc(migrated, "skip", "999999").returncode == 1


def test_purge_deletes_errors_older_than_the_given_age(migrated: StateDb) -> None:
    _, error = seed(migrated)
    assert "purged 0 error(s)" in ok(cdc(migrated, "errors", "purge", "--older-than", "7d"))
    migrated.run(lambda c: c.execute("UPDATE cdc.job_errors SET updated_at = now() - interval '8 days'"))
    assert "purged 1 error(s)" in ok(cdc(migrated, "errors", "purge", "--older-than", "7d"))
    assert migrated.run(lambda c: job_errors.get_error(c, error.id)) is None
    bad = cdc(migrated, "errors", "purge", "--older-than", "a week")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_read_commands_in_a_pipe_print_each_row_on_one_line(migrated: StateDb) -> None:
    """Without a TTY (here: a pipe, with COLUMNS=200 in the environment) a table is as wide as its content: a long
    message stays on its row's line, where rich's 80-column default wrapped it about ten characters a line."""
    job, _ = seed(migrated)
    message = ("CONTACTS: contact CT000042: customer C00017 is outside the CUSTOMER mapping's ERP filter "
               "(blocked ne all): the contact cannot sync until the customer is in the filter and coupled; "
               "widen the filter or couple the customer by hand (cdc couple), then cdc retry")
    assert len(message) > 200

    async def work(conn: asyncpg.Connection) -> job_errors.JobError:
        return await job_errors.record_error(conn, job.id, "CONTACTS", "erp", "CT000042", "crm", None, message)

    error = migrated.run(work)
    for args in (("errors",), ("errors", "--open"), ("job", str(job.id))):
        lines = [line for line in ok(cdc(migrated, *args)).splitlines() if message[:40] in line]
        assert len(lines) == 1 and message in lines[0] and "erp:CT000042" in lines[0], (args, lines)
        assert str(error.id) in lines[0]
    jobs_lines = [line for line in ok(cdc(migrated, "jobs")).splitlines() if str(job.id)[:8] in line]
    assert len(jobs_lines) == 1 and "1 record failed" in jobs_lines[0] and "CUSTOMER" in jobs_lines[0]
    assert json.loads(ok(cdc(migrated, "errors", "--json")))[0]["message"] == message
