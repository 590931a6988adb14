"""The state stores against the real PostgreSQL, in throwaway databases `cdc_test_state_<random>`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest

from cdc.database import connect
from cdc.mapping.model import MappingFile
from cdc.settings import Settings
from cdc.state import couplings, job_errors, jobs, mapping_settings, migrate, offsets, parking, record_log
from cdc.state.couplings import AlreadyCoupled, Coupling, NotCoupled
from cdc.state.jobs import Counts
from cdc.state.record_log import LogEntry

TABLES = ["couplings", "job_errors", "jobs", "parked_events", "tracked_offsets", "mapping_settings",
          "record_log", "replay_runs"]


def dsn_of(settings: Settings, database: str) -> str:
    return urlunsplit(urlsplit(settings.dsn("state"))._replace(path=f"/{database}"))


async def create_database(settings: Settings) -> str:
    name = f"cdc_test_state_{secrets.token_hex(4)}"
    admin = await connect(dsn_of(settings, "postgres"), role="maintenance")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_database(settings: Settings, name: str) -> None:
    admin = await connect(dsn_of(settings, "postgres"), role="maintenance")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def state_dsn(settings: Settings) -> AsyncIterator[str]:
    name = await create_database(settings)
    dsn = dsn_of(settings, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn)
    finally:
        await conn.close()
    yield dsn
    await drop_database(settings, name)


@pytest.fixture
async def conn(state_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(state_dsn)
    await conn.execute(f"TRUNCATE {', '.join(f'cdc.{t}' for t in TABLES)} RESTART IDENTITY CASCADE")
    yield conn
    await conn.close()


@pytest.fixture
async def other_conn(state_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(state_dsn)
    yield conn
    await conn.close()


# ---------------------------------------------------------------- migrations

async def test_migrations_apply_once_when_processes_race_and_again_is_a_no_op(settings):
    name = await create_database(settings)
    try:
        conns = [await asyncpg.connect(dsn_of(settings, name)) for _ in range(4)]
        try:
            results = await asyncio.gather(*(migrate.migrate(c) for c in conns))
            every = [m.version for m in migrate.available()]
            assert sorted(results, key=len) == [[], [], [], every]
            assert await asyncio.gather(*(migrate.migrate(c) for c in conns)) == [[], [], [], []]
            rows = await conns[0].fetch("SELECT version, name FROM cdc.schema_migrations ORDER BY version")
            assert [tuple(r) for r in rows] == [(m.version, m.name) for m in migrate.available()]
            assert await migrate.pending(conns[0]) == []
            await migrate.require_current(conns[0])
        finally:
            for c in conns:
                await c.close()
    finally:
        await drop_database(settings, name)


async def test_a_failing_migration_leaves_nothing_behind_and_releases_the_lock(settings, monkeypatch):
    name = await create_database(settings)
    try:
        conn = await asyncpg.connect(dsn_of(settings, name))
        try:
            assert await migrate.pending(conn) == migrate.available()
            with pytest.raises(Exception, match="run `cdc db migrate`"):
                await migrate.require_current(conn)
            good = migrate.available()
            broken = migrate.Migration(len(good) + 1, "broken",
                                       "CREATE TABLE cdc.half_done (a int); SELECT 1/0;")
            monkeypatch.setattr(migrate, "available", lambda: [*good, broken])
            with pytest.raises(asyncpg.DivisionByZeroError):
                await migrate.migrate(conn)
            assert await migrate.applied(conn) == [m.version for m in good]
            assert await conn.fetchval("SELECT to_regclass('cdc.half_done')") is None
            other = await asyncpg.connect(dsn_of(settings, name))
            try:
                assert await asyncio.wait_for(other.fetchval(
                    "SELECT pg_try_advisory_lock($1::bigint)", migrate.LOCK_KEY), 5)
            finally:
                await other.close()
        finally:
            await conn.close()
    finally:
        await drop_database(settings, name)


# ---------------------------------------------------------------- couplings

async def test_the_database_refuses_a_second_coupling_on_either_side(conn):
    insert = "INSERT INTO cdc.couplings (mapping, erp_key, crm_key) VALUES ('CUSTOMER', $1, $2)"
    await conn.execute(insert, "E1", "C1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, "E1", "C2")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, "E2", "C1")
    with pytest.raises(AlreadyCoupled, match="CUSTOMER, C1"):
        await couplings.upsert_many(conn, [Coupling("CUSTOMER", "E2", "C1")])


async def test_couple_refuses_an_already_coupled_record_naming_its_partner(conn):
    made = await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    assert (made.erp_key, made.crm_key, made.skipped, made.failure_count) == ("E1", "C1", False, 0)
    with pytest.raises(AlreadyCoupled, match="ERP record 'E1' is already coupled to CRM record 'C1'"):
        await couplings.couple(conn, "CUSTOMER", "E1", "C2")
    with pytest.raises(AlreadyCoupled, match="CRM record 'C1' is already coupled to ERP record 'E1'"):
        await couplings.couple(conn, "CUSTOMER", "E2", "C1")
    with pytest.raises(AlreadyCoupled):
        await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    await couplings.couple(conn, "CONTACTS", "E1", "C1")  # another mapping is another key space
    assert await couplings.count(conn, "CUSTOMER") == 1


async def test_fetch_by_keys_on_either_side_with_values_and_positions(conn):
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await couplings.upsert_many(conn, [
        Coupling("CUSTOMER", "E1", "C1", erp_values={"name": "Ada", "limit": 10}, crm_values={"name": "Ada"},
                 erp_modified_on=at, erp_position=2**40, last_result_to_crm="success"),
        Coupling("CUSTOMER", "E2", "C2"),
        Coupling("CONTACTS", "E1", "K1"),
    ])
    by_erp = await couplings.fetch_by_keys(conn, "CUSTOMER", "erp", ["E1", "E2", "E9"])
    assert set(by_erp) == {"E1", "E2"}
    first = by_erp["E1"]
    assert first.erp_values == {"name": "Ada", "limit": 10} and first.crm_values == {"name": "Ada"}
    assert (first.erp_modified_on, first.erp_position, first.last_result_to_crm) == (at, 2**40, "success")
    assert first.created_at is not None
    by_crm = await couplings.fetch_by_keys(conn, "CUSTOMER", "crm", ["C2", "K1"])
    assert {k: c.erp_key for k, c in by_crm.items()} == {"C2": "E2"}
    assert await couplings.fetch_one(conn, "CONTACTS", "crm", "K1") == (
        await couplings.fetch_by_keys(conn, "CONTACTS", "erp", ["E1"]))["E1"]
    assert await couplings.fetch_one(conn, "CONTACTS", "crm", "C1") is None
    assert await couplings.fetch_by_keys(conn, "CUSTOMER", "erp", []) == {}


async def test_upsert_overwrites_by_erp_key_and_the_last_of_a_batch_wins(conn):
    await couplings.upsert_many(conn, [Coupling("CUSTOMER", "E1", "C1", erp_values={"v": 1},
                                                failure_count=1)])
    await couplings.upsert_many(conn, [
        Coupling("CUSTOMER", "E1", "C1", erp_values={"v": 2}),
        Coupling("CUSTOMER", "E1", "C1", erp_values={"v": 3}, erp_position=7),
    ])
    now = await couplings.fetch_one(conn, "CUSTOMER", "erp", "E1")
    assert (now.erp_values, now.erp_position, now.failure_count) == ({"v": 3}, 7, 0)
    assert await couplings.count(conn, "CUSTOMER") == 1


async def test_a_sync_in_one_direction_keeps_the_other_directions_result(conn):
    await couplings.upsert_many(conn, [Coupling("CUSTOMER", "E1", "C1", last_result_to_erp="failure")])
    await couplings.upsert_many(conn, [Coupling("CUSTOMER", "E1", "C1", last_result_to_crm="success")])
    now = await couplings.fetch_one(conn, "CUSTOMER", "crm", "C1")
    assert (now.last_result_to_crm, now.last_result_to_erp) == ("success", "failure")


async def test_partners_of_many_mappings_and_both_systems_in_one_statement(conn):
    await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    await couplings.couple(conn, "CUSTOMER", "E2", "C2")
    await couplings.couple(conn, "CURRENCY", "EUR", "eur-id")
    wanted = {("CUSTOMER", "erp", "E1"), ("CUSTOMER", "crm", "C2"), ("CURRENCY", "erp", "EUR"),
              ("CURRENCY", "crm", "C1"), ("CUSTOMER", "erp", "E9")}
    assert await couplings.partners_of(conn, wanted) == {
        ("CUSTOMER", "erp", "E1"): "C1", ("CUSTOMER", "crm", "C2"): "E2", ("CURRENCY", "erp", "EUR"): "eur-id"}
    assert await couplings.partners_of(conn, set()) == {}


async def test_uncouple_by_either_key_or_all(conn):
    await couplings.upsert_many(conn, [Coupling("CUSTOMER", f"E{i}", f"C{i}") for i in range(4)])
    assert await couplings.uncouple(conn, "CUSTOMER", erp_key="E0") == 1
    assert await couplings.uncouple(conn, "CUSTOMER", crm_key="C1") == 1
    assert await couplings.uncouple(conn, "CUSTOMER", crm_key="C1") == 0
    assert await couplings.uncouple(conn, "CUSTOMER", all=True) == 2
    assert await couplings.count(conn, "CUSTOMER") == 0
    with pytest.raises(ValueError, match="exactly one"):
        await couplings.uncouple(conn, "CUSTOMER", erp_key="E1", all=True)


async def test_the_same_error_twice_in_a_row_skips_the_record(conn):
    await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    once = await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_crm", "credit limit too high")
    assert (once.skipped, once.failure_count, once.last_result_to_crm, once.last_result_to_erp) == (
        False, 1, "failure", None)
    twice = await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_crm", "credit limit too high")
    assert (twice.skipped, twice.failure_count) == (True, 2)
    assert [c.erp_key for c in await couplings.list_skipped(conn, "CUSTOMER")] == ["E1"]
    assert await couplings.list_skipped(conn, "CONTACTS") == []

    assert await couplings.clear_skipped(conn, "CUSTOMER", "crm", ["C1"]) == 1
    cleared = await couplings.fetch_one(conn, "CUSTOMER", "erp", "E1")
    assert (cleared.skipped, cleared.failure_count) == (False, 0)
    again = await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_erp", "credit limit too high")
    assert (again.skipped, again.last_result_to_erp) == (False, "failure")


async def test_different_errors_or_a_success_in_between_do_not_skip(conn):
    await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_crm", "first")
    assert not (await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_crm", "second")).skipped
    succeeded = await couplings.fetch_one(conn, "CUSTOMER", "erp", "E1")
    await couplings.upsert_many(conn, [Coupling(**{**succeeded.__dict__, "failure_count": 0,
                                                   "last_result_to_crm": "success"})])
    assert not (await couplings.mark_failure(conn, "CUSTOMER", "E1", "to_crm", "second")).skipped
    with pytest.raises(NotCoupled):
        await couplings.mark_failure(conn, "CUSTOMER", "E404", "to_crm", "x")


async def test_skip_and_clear_by_key_or_for_a_whole_mapping(conn):
    await couplings.upsert_many(conn, [Coupling("CUSTOMER", f"E{i}", f"C{i}") for i in range(3)])
    assert await couplings.skip(conn, "CUSTOMER", "crm", "C0")
    assert await couplings.skip(conn, "CUSTOMER", "erp", "E1")
    assert not await couplings.skip(conn, "CUSTOMER", "erp", "E404")
    assert len(await couplings.list_skipped(conn)) == 2
    assert await couplings.clear_skipped(conn, "CUSTOMER") == 2
    assert await couplings.list_skipped(conn) == []


# ---------------------------------------------------------------- jobs

async def test_live_jobs_are_one_per_mapping_direction_and_window(conn, other_conn):
    t0 = datetime(2026, 5, 1, 10, 15, tzinfo=UTC)
    first = await jobs.live_job(conn, "CUSTOMER", "to_crm", t0, 3600)
    assert await jobs.live_job(conn, "CUSTOMER", "to_crm", t0 + timedelta(minutes=44), 3600) == first
    assert await jobs.live_job(conn, "CUSTOMER", "to_erp", t0, 3600) != first
    assert await jobs.live_job(conn, "CONTACTS", "to_crm", t0, 3600) != first
    racing = await asyncio.gather(jobs.live_job(conn, "ITEM", "to_crm", t0, 3600),
                                  jobs.live_job(other_conn, "ITEM", "to_crm", t0, 3600))
    assert racing[0] == racing[1]

    job = await jobs.get_job(conn, first)
    assert (job.kind, job.status, job.window_start, job.started_at) == (
        "live", "running", datetime(2026, 5, 1, 10, tzinfo=UTC), t0)

    second = await jobs.live_job(conn, "CUSTOMER", "to_crm", t0 + timedelta(hours=1), 3600)
    assert second != first
    closed = await jobs.get_job(conn, first)
    assert (closed.status, closed.finished_at) == ("succeeded", datetime(2026, 5, 1, 11, tzinfo=UTC))
    assert (await jobs.get_job(conn, second)).status == "running"
    live = await jobs.list_jobs(conn, "CUSTOMER", "live")
    assert (live[0].id, len(live)) == (second, 3)
    assert await conn.fetchval("SELECT count(*) FROM cdc.jobs WHERE kind = 'live'") == 5


async def test_counting_on_the_live_job_is_live_job_and_add_counts_in_one(conn):
    t0 = datetime(2026, 5, 1, 10, 15, tzinfo=UTC)
    first = await jobs.count_live(conn, "CUSTOMER", "to_crm", t0, 3600, {"modified": 3, "failed": 1})
    assert first == await jobs.live_job(conn, "CUSTOMER", "to_crm", t0 + timedelta(minutes=5), 3600)
    assert await jobs.count_live(conn, "CUSTOMER", "to_crm", t0 + timedelta(minutes=9), 3600,
                                 Counts(modified=2, coupled=1)) == first
    assert (await jobs.get_job(conn, first)).counts == Counts(modified=5, failed=1, coupled=1)
    assert await jobs.count_live(conn, "CUSTOMER", "to_erp", t0, 3600, {"modified": 1}) != first

    second = await jobs.count_live(conn, "CUSTOMER", "to_crm", t0 + timedelta(hours=1), 3600, {"inserted": 4})
    closed, running = await jobs.get_job(conn, first), await jobs.get_job(conn, second)
    assert (closed.status, closed.finished_at) == ("succeeded", datetime(2026, 5, 1, 11, tzinfo=UTC))
    assert (running.status, running.counts, running.window_start) == (
        "running", Counts(inserted=4), datetime(2026, 5, 1, 11, tzinfo=UTC))


async def test_counters_add_up_and_a_finished_job_keeps_its_outcome(conn):
    job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm", message="full sync")
    assert (job.status, job.counts, job.message) == ("running", Counts(), "full sync")
    await jobs.add_counts(conn, job.id, {"inserted": 3, "failed": 1})
    await jobs.add_counts(conn, job.id, Counts(inserted=2, unchanged=5, uncoupled=1))
    assert (await jobs.get_job(conn, job.id)).counts == Counts(inserted=5, unchanged=5, failed=1, uncoupled=1)
    with pytest.raises(ValueError, match="unknown job counters"):
        await jobs.add_counts(conn, job.id, {"inserts": 1})

    assert await jobs.finish_job(conn, job.id, "failed", "1 record failed")
    assert not await jobs.finish_job(conn, job.id, "succeeded")
    done = await jobs.get_job(conn, job.id)
    assert (done.status, done.message) == ("failed", "1 record failed") and done.finished_at is not None
    with pytest.raises(ValueError):
        await jobs.start_job(conn, "CUSTOMER", "live", "to_crm")


async def test_list_filters_and_get_by_unique_prefix(conn):
    made = [await jobs.start_job(conn, "CUSTOMER" if i % 2 else "CONTACTS", "manual", None)
            for i in range(17)]
    coupling = await jobs.start_job(conn, "CUSTOMER", "coupling", None)
    assert len(await jobs.list_jobs(conn)) == 18
    assert len(await jobs.list_jobs(conn, limit=5)) == 5
    assert {j.mapping for j in await jobs.list_jobs(conn, mapping="CONTACTS")} == {"CONTACTS"}
    assert [j.id for j in await jobs.list_jobs(conn, kind="coupling")] == [coupling.id]
    newest_first = await jobs.list_jobs(conn)
    assert [j.started_at for j in newest_first] == sorted((j.started_at for j in newest_first), reverse=True)

    target = made[0]
    assert (await jobs.get_job(conn, str(target.id)[:13])).id == target.id
    assert (await jobs.get_job(conn, str(target.id).upper())).id == target.id
    firsts = [str(j.id)[0] for j in made + [coupling]]
    shared = next(c for c in firsts if firsts.count(c) > 1)  # 18 ids, 16 hex digits
    with pytest.raises(jobs.AmbiguousJobId, match="more than one job"):
        await jobs.get_job(conn, shared)
    assert await jobs.get_job(conn, uuid4()) is None


# ---------------------------------------------------------------- job errors

async def test_a_repeated_open_error_counts_occurrences(conn):
    job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
    later = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
    first = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", "crm", None, "boom", "d1",
                                          {"v": 1})
    again = await job_errors.record_error(conn, later.id, "CUSTOMER", "erp", "E1", "crm", "C1", "boom", "d2",
                                          {"v": 2})
    assert again.id == first.id
    assert (again.occurrences, again.job_id, again.destination_key, again.detail, again.event) == (
        2, later.id, "C1", "d2", {"v": 2})
    other = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", "crm", "C1", "bang")
    assert other.id != first.id
    assert await job_errors.open_count(conn) == 2

    await job_errors.mark(conn, [first.id], "ignored")
    fresh = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", "crm", "C1", "boom")
    assert (fresh.id != first.id, fresh.occurrences) == (True, 1)
    assert [e.id for e in await job_errors.list_errors(conn, open_only=True)] == [fresh.id, other.id]
    assert len(await job_errors.list_errors(conn)) == 3
    assert await job_errors.list_errors(conn, mapping="CONTACTS") == []
    assert [e.id for e in await job_errors.list_errors(conn, job_id=later.id)] == [first.id]
    assert (await job_errors.get_error(conn, first.id)).state == "ignored"
    assert await job_errors.get_error(conn, 10**9) is None
    with pytest.raises(ValueError):
        await job_errors.mark(conn, [first.id], "closed")  # type: ignore[arg-type]


async def test_settle_closes_the_synced_records_errors_on_either_side_and_their_pairs_conflicts(conn):
    job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
    erp = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", "crm", None, "boom")
    parked = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E2", "crm", None, "waits", state="parked")
    crm = await job_errors.record_error(conn, job.id, "CUSTOMER", "crm", "C1", "erp", None, "bang")
    same_key_other_side = await job_errors.record_error(conn, job.id, "CUSTOMER", "crm", "E1", "erp", None, "x")
    other_mapping = await job_errors.record_error(conn, job.id, "CONTACTS", "erp", "E1", "crm", None, "boom")
    conflict, _ = await job_errors.record_conflict(conn, job.id, "CUSTOMER", "E3", "C3", "both changed", None, None)
    untouched, _ = await job_errors.record_conflict(conn, job.id, "CUSTOMER", "E4", "C4", "both changed", None, None)

    assert await job_errors.settle(conn, "CUSTOMER", [], [], []) == 0
    assert await job_errors.settle(conn, "CUSTOMER", ["E1", "E2"], ["C1"], ["E3"]) == 4
    state = {e.id: e.state for e in await job_errors.list_errors(conn)}
    assert [state[e.id] for e in (erp, parked, crm, conflict)] == ["resolved"] * 4
    assert [state[e.id] for e in (same_key_other_side, other_mapping, untouched)] == ["open"] * 3
    assert await job_errors.settle(conn, "CUSTOMER", ["E1", "E2"], ["C1"], ["E3"]) == 0


async def test_purge_deletes_errors_not_seen_for_the_given_time(conn):
    job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
    old = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", None, None, "old")
    recent = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E2", None, None, "new")
    await conn.execute("UPDATE cdc.job_errors SET updated_at = now() - interval '8 days' WHERE id = $1",
                       old.id)
    assert await job_errors.purge(conn, timedelta(days=7)) == 1
    assert [e.id for e in await job_errors.list_errors(conn)] == [recent.id]


async def test_retry_unskips_the_record_and_queues_its_event_and_skip_skips_it(conn):
    job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
    await couplings.couple(conn, "CUSTOMER", "E1", "C1")
    await couplings.skip(conn, "CUSTOMER", "erp", "E1")
    with_event = await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "E1", "crm", "C1", "boom",
                                               event={"op": "u", "key": "E1"})
    without = await job_errors.record_error(conn, job.id, "CUSTOMER", "crm", "C9", None, None, "bang")

    async with conn.transaction():
        retried = await job_errors.retry(conn, [with_event.id, without.id, 10**9])
    assert {e.id: e.state for e in retried} == {with_event.id: "retried", without.id: "retried"}
    assert not (await couplings.fetch_one(conn, "CUSTOMER", "erp", "E1")).skipped
    queued = await parking.due(conn, datetime.now(UTC) + timedelta(seconds=1))
    assert [(p.mapping, p.system, p.key, p.event, p.attempts) for p in queued] == [
        ("CUSTOMER", "erp", "E1", {"op": "u", "key": "E1"}, 0)]
    assert queued[0].reason == f"retry of error #{with_event.id}"

    error, coupled = await job_errors.skip(conn, with_event.id)
    assert (error.state, coupled) == ("ignored", True)
    assert (await couplings.fetch_one(conn, "CUSTOMER", "crm", "C1")).skipped
    assert (await job_errors.skip(conn, without.id))[1] is False
    assert await job_errors.skip(conn, 10**9) is None


# ---------------------------------------------------------------- offsets, parking, settings, record log

async def test_offsets_only_move_forward(conn):
    customer, other_topic = "cdc.erp.customer", "cdc.crm.x"
    await offsets.store(conn, "g", {(customer, 0): 10, (customer, 1): 5, (other_topic, 0): 3})
    await offsets.store(conn, "g", {(customer, 0): 7, (customer, 1): 6})
    await offsets.store(conn, "other", {(customer, 0): 1})
    await offsets.store(conn, "g", {})
    assert await offsets.load(conn, "g", [customer]) == {(customer, 0): 10, (customer, 1): 6}
    assert (await offsets.load(conn, "g", [customer, other_topic]))[(other_topic, 0)] == 3
    assert await offsets.load(conn, "other", [customer, other_topic]) == {(customer, 0): 1}
    assert await offsets.load(conn, "nobody", [customer]) == {}


async def test_parked_events_come_due_in_order_and_are_released(conn, other_conn):
    now = datetime.now(UTC)
    first = await parking.park(conn, "CONTACTS", "erp", "K1", {"n": 1}, "no parent", timedelta(0))
    second = await parking.park(conn, "CONTACTS", "erp", "K1", {"n": 2}, "behind #1", timedelta(0))
    later = await parking.park(conn, "CONTACTS", "crm", "K2", {"n": 3}, "later", timedelta(hours=1))
    soon = now + timedelta(seconds=5)
    assert [p.id for p in await parking.due(conn, soon)] == [first]  # the oldest of each record only
    assert [p.event for p in await parking.due(conn, soon, limit=1)] == [{"n": 1}]
    assert await parking.is_parked(conn, "CONTACTS", "erp", ["K1", "K2", "K3"]) == {"K1"}
    assert await parking.is_parked(conn, "CONTACTS", "crm", ["K1", "K2"]) == {"K2"}
    assert await parking.count(conn, "CONTACTS") == 3

    async with conn.transaction():
        taken = await parking.due(conn, soon, limit=1)
        # SKIP LOCKED, and the change behind the one being retried waits for it
        assert [p.id for p in await parking.due(other_conn, soon)] == []
        await parking.release(conn, [p.id for p in taken])
    await parking.reschedule(conn, second, 1, now + timedelta(minutes=10), "still no parent")
    assert await parking.due(conn, soon) == []
    moved = await parking.due(conn, now + timedelta(minutes=61))
    assert [(p.id, p.attempts) for p in moved] == [(second, 1), (later, 0)]
    assert moved[0].reason == "still no parent"
    assert await parking.release(conn, [second, later]) == 2
    assert await parking.is_parked(conn, "CONTACTS", "erp", ["K1"]) == set()


async def test_watermarks_never_move_backwards(conn):
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    t2 = t1 + timedelta(hours=1)
    assert await mapping_settings.get_watermark(conn, "CUSTOMER", "erp") is None
    assert await mapping_settings.set_watermark(conn, "CUSTOMER", "erp", t2) == t2
    assert await mapping_settings.set_watermark(conn, "CUSTOMER", "erp", t1) == t2
    assert await mapping_settings.get_watermark(conn, "CUSTOMER", "erp") == t2
    assert await mapping_settings.get_watermark(conn, "CUSTOMER", "crm") is None
    assert await mapping_settings.set_watermark(conn, "CUSTOMER", "crm", t1) == t1
    assert await mapping_settings.get_watermark(conn, "CUSTOMER", "erp") == t2
    await mapping_settings.mark_synced(conn, "CUSTOMER", t2)
    await mapping_settings.mark_synced(conn, "CUSTOMER", t1)
    state = (await mapping_settings.fetch_all(conn))["CUSTOMER"]
    assert (state.watermark("erp"), state.watermark("crm"), state.last_synced_at) == (t2, t1, t2)


def _mapping(name: str, only_coupled: bool) -> dict:
    return {"name": name, "sync_only_coupled": only_coupled,
            "erp": {"table": "customer", "key": "no", "modified_on": "modified_at"},
            "crm": {"table": "account", "key": "accountid", "modified_on": "modifiedon"},
            "fields": [{"erp": "name", "crm": "name"}]}


async def test_sync_only_coupled_overrides_the_mapping_file_until_reset(conn):
    file = MappingFile.model_validate({"mappings": [_mapping("CUSTOMER", True), _mapping("CONTACTS", False)]})
    effective = mapping_settings.effective_sync_only_coupled
    assert await effective(conn, file) == {"CUSTOMER": True, "CONTACTS": False}
    await mapping_settings.set_sync_only_coupled(conn, ["CUSTOMER", "CONTACTS"], False)
    assert await effective(conn, file) == {"CUSTOMER": False, "CONTACTS": False}
    await mapping_settings.set_sync_only_coupled(conn, ["CONTACTS"], True)
    await mapping_settings.set_sync_only_coupled(conn, ["CUSTOMER"], None)
    assert await effective(conn, file) == {"CUSTOMER": True, "CONTACTS": True}


async def test_record_log_keeps_the_newest_entries(conn):
    await record_log.append_many(conn, [
        LogEntry("CUSTOMER", "erp", "E1", f"decision {i}", partner_key="C1", event_id=f"ev{i}", op="u")
        for i in range(5)
    ] + [LogEntry("CUSTOMER", "crm", "E1", "other side")])
    await record_log.append_many(conn, [])
    newest = await record_log.recent(conn, "erp", "E1", limit=2)
    assert [e.decision for e in newest] == ["decision 4", "decision 3"]
    assert (newest[0].partner_key, newest[0].event_id, newest[0].op) == ("C1", "ev4", "u")
    assert newest[0].at is not None and newest[0].id is not None
    assert await record_log.prune(conn, keep=3) == 3
    assert [e.decision for e in await record_log.recent(conn, "erp", "E1")] == ["decision 4", "decision 3"]
    assert await record_log.prune(conn, keep=3) == 0
    assert await record_log.prune(conn, keep=0) == 3
