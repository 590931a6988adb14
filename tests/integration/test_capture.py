"""Capture on the real stack: every committed change in the ERP and the CRM becomes an event on Kafka, at least
once, in order per key; our appliers' writes do not; a SIGKILL loses nothing; a huge transaction streams."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from cdc.capture.lag import capture_lag
from cdc.capture.loop import run_capture
from cdc.capture.progress import progress_path
from cdc.capture.slot import slot_name
from cdc.database import quote_ident
from cdc.errors import ConfigError, ServiceUnavailable
from cdc.mapping.load import load_mapping_file
from cdc.settings import Settings
from cdc.topics.admin import TopicError, ensure_topics
from tests.integration.capture_fixtures import (
    REPO,
    CaptureEnv,
    CaptureProcess,
    Record,
    TopicReader,
    wait_until,
)

TOKEN = uuid.uuid4().hex[:6]
CURRENCY_A, CURRENCY_B = str(uuid.uuid4()), str(uuid.uuid4())
USER_A, USER_B = str(uuid.uuid4()), str(uuid.uuid4())
UOM_A, UOM_B = str(uuid.uuid4()), str(uuid.uuid4())
ACCOUNT_A, ACCOUNT_B = str(uuid.uuid4()), str(uuid.uuid4())
CONTACT_A, CONTACT_B = str(uuid.uuid4()), str(uuid.uuid4())
PRODUCT_A, PRODUCT_B = str(uuid.uuid4()), str(uuid.uuid4())

# table -> (key column, row A, row B, update of A); rows in foreign-key order. Decimals carry the column's scale,
# so their text equals PostgreSQL's.
ERP: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "currency": ("code",
                 {"code": "EUR", "description": "Euro 😀 Ünïcode", "symbol": "€", "exchange_rate": Decimal("1.234567")},
                 {"code": "USD", "description": "Dollar", "symbol": "$", "exchange_rate": Decimal("1.000000")},
                 {"exchange_rate": Decimal("2.500000"), "description": "Euro ✓"}),
    "salesperson": ("code",
                    {"code": "SP1", "name": "Zoë Ärger 😀", "email": "zoe@example.com", "blocked": False},
                    {"code": "SP2", "name": "Bob", "email": "bob@example.com", "blocked": True},
                    {"blocked": True, "phone_no": "+49 30 1234"}),
    "unit_of_measure": ("code", {"code": "PCS", "description": "Piece"}, {"code": "BOX", "description": "Box"},
                        {"description": "Pieces"}),
    "customer": ("no",
                 {"no": "C1", "name": "Müller & Söhne 🚀", "salesperson_code": "SP1", "currency_code": "EUR",
                  "credit_limit": Decimal("1000.50")},
                 {"no": "C2", "name": "Nobody", "salesperson_code": None, "currency_code": None},
                 {"credit_limit": Decimal("99999999.99"), "salesperson_code": None}),
    "contact": ("no", {"no": "CT1", "first_name": "Åsa", "surname": "Öberg", "customer_no": "C1"},
                {"no": "CT2", "first_name": "Solo", "customer_no": None}, {"job_title": "CEO 👔"}),
    "resource": ("no", {"no": "R1", "name": "Consulting", "base_unit_of_measure": "PCS",
                        "unit_price": Decimal("12.34")},
                 {"no": "R2", "name": "Machine", "type": "machine", "base_unit_of_measure": None},
                 {"blocked": True}),
    "item": ("no", {"no": "I1", "description": "Widget", "base_unit_of_measure": "PCS",
                    "inventory": Decimal("0.50")},
             {"no": "I2", "description": "Gadget"}, {"unit_price": Decimal("0.01")}),
}
CRM: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "transactioncurrency": ("transactioncurrencyid",
                            {"transactioncurrencyid": CURRENCY_A, "isocurrencycode": "EUR", "currencyname": "Euro 😀",
                             "exchangerate": Decimal("1.2345678901")},
                            {"transactioncurrencyid": CURRENCY_B, "isocurrencycode": "USD"},
                            {"statecode": 1}),
    "systemuser": ("systemuserid",
                   {"systemuserid": USER_A, "fullname": "Zoë 😀", "isdisabled": False, "islicensed": True},
                   {"systemuserid": USER_B, "fullname": "Bob"}, {"isdisabled": True}),
    "uomschedule": ("uomscheduleid", {"uomscheduleid": UOM_A, "name": "PCS"}, {"uomscheduleid": UOM_B, "name": "BOX"},
                    {"description": "Pieces ✓"}),
    "account": ("accountid",
                {"accountid": ACCOUNT_A, "name": "Müller 🚀", "ownerid": USER_A, "transactioncurrencyid": CURRENCY_A,
                 "paymenttermscode": None, "creditlimit": Decimal("1234.5678")},
                {"accountid": ACCOUNT_B, "name": "Nobody"}, {"paymenttermscode": 2, "creditlimit": Decimal("0.0000")}),
    "contact": ("contactid", {"contactid": CONTACT_A, "firstname": "Åsa", "parentcustomerid": ACCOUNT_A},
                {"contactid": CONTACT_B, "firstname": "Solo"}, {"jobtitle": "CEO 👔"}),
    "product": ("productid", {"productid": PRODUCT_A, "productnumber": "I1", "name": "Widget",
                              "defaultuomscheduleid": UOM_A, "price": Decimal("9.9900")},
                {"productid": PRODUCT_B, "productnumber": "R2", "producttypecode": 3}, {"statecode": 1}),
}
TABLES = {"erp": ERP, "crm": CRM}
MODIFIED = {"erp": "modified_at", "crm": "modifiedon"}


def as_json(value: Any) -> Any:
    """What a value written from Python looks like in an event."""
    return str(value) if isinstance(value, Decimal) else value


async def insert(conn: asyncpg.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(quote_ident(c) for c in row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO {quote_ident(table)} ({columns}) VALUES ({params})", *row.values())


async def update(conn: asyncpg.Connection, table: str, key: str, key_value: Any, changes: dict[str, Any]) -> None:
    sets = ", ".join(f"{quote_ident(c)} = ${i}" for i, c in enumerate(changes, start=2))
    await conn.execute(f"UPDATE {quote_ident(table)} SET {sets} WHERE {quote_ident(key)} = $1",
                       key_value, *changes.values())


def capture_ready(s: Settings, systems: list[str], alive: Callable[[], bool] = lambda: True,
                  ) -> Callable[[], Awaitable[bool]]:
    """Whether capture of `systems` is reading: its progress files exist (written once the slot is consistent;
    creating a slot waits for the transactions in progress to finish)."""
    async def ready() -> bool:
        assert alive(), "capture stopped"
        return all(progress_path(s, slot_name(s, system)).exists() for system in systems)

    return ready


@contextlib.asynccontextmanager
async def running_capture(s: Settings, systems: list[str]) -> AsyncIterator[asyncio.Task]:
    """run_capture in this process until the block ends; the block starts once capture reads every slot."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_capture(s, systems, stop))  # type: ignore[arg-type]

    def alive() -> bool:
        if task.done():
            task.result()  # raise what stopped it
        return True

    try:
        await wait_until(capture_ready(s, systems, alive), 120, "capture to start")
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def by_key(records: list[Record], key_column: str) -> dict[Any, list[Record]]:
    grouped: dict[Any, list[Record]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        grouped[r.key[key_column] if r.key else None].append(r)
    return grouped


# ------------------------------------------------------------------ every table, both systems


async def test_changes_on_every_mapped_table_reach_their_topics_in_commit_order(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("tables", heartbeat_interval=1.0)
    topics = [s.topic(system, table) for system, tables in TABLES.items() for table in tables]
    async with running_capture(s, ["erp", "crm"]):
        for system, tables in TABLES.items():
            conn = await capture_env.connect(system)
            try:
                async with conn.transaction():  # one transaction: all inserts
                    for table, (_, a, b, _) in tables.items():
                        await insert(conn, table, a)
                        await insert(conn, table, b)
                for table, (key, a, _, change) in tables.items():  # one transaction per update
                    await update(conn, table, key, a[key], change)
                async with conn.transaction():  # children first: deletes of the B rows
                    for table, (key, _, b, _) in reversed(tables.items()):
                        await conn.execute(f"DELETE FROM {quote_ident(table)} WHERE {quote_ident(key)} = $1", b[key])
            finally:
                await conn.close()

        async with TopicReader(s.kafka_bootstrap, topics) as reader:
            expected = 4 * sum(len(t) for t in TABLES.values())  # A: c, u; B: c, d
            await reader.until(lambda rs: len(rs) >= expected, 60, f"{expected} events")
            await asyncio.sleep(0)
            records = reader.records

    assert len(records) == expected, "no event more than the changes made"
    for system, tables in TABLES.items():
        for table, (key, a, b, change) in tables.items():
            topic = s.topic(system, table)
            mine = [r for r in records if r.topic == topic]
            grouped = by_key(mine, key)
            assert set(grouped) == {a[key], b[key]}, f"{topic}: events keyed by the primary key"
            ops_a = [r.event for r in grouped[a[key]]]
            ops_b = [r.event for r in grouped[b[key]]]
            assert [e.op for e in ops_a] == ["c", "u"], f"{topic}: commit order for key {a[key]}"
            assert [e.op for e in ops_b] == ["c", "d"], f"{topic}: commit order for key {b[key]}"
            for events in (ops_a, ops_b):
                assert events[0].position < events[1].position
            created, updated = ops_a
            assert created.before is None
            assert {c: created.after[c] for c in a} == {c: as_json(v) for c, v in a.items()}, topic
            assert updated.before == created.after, f"{topic}: REPLICA IDENTITY FULL gives the old row"
            assert {c: updated.after[c] for c in change} == {c: as_json(v) for c, v in change.items()}, topic
            deleted = ops_b[1]
            assert deleted.after is None and deleted.before == ops_b[0].after
            for event in ops_a + ops_b:
                assert event.system == system and event.source.table == table
                assert event.source.db == capture_env.dsns[system].rsplit("/", 1)[1]
                assert event.source.name == f"{s.topic_prefix}.{system}"
                assert event.source.commit_lsn and event.source.lsn and event.source.txId
                assert event.event_id and event.event_id.startswith(f"{system}:")
                image = event.row
                stamp = datetime.fromisoformat(image[MODIFIED[system]])
                assert image[MODIFIED[system]].endswith("+00:00") and stamp.tzinfo is not None
            for r in grouped[a[key]] + grouped[b[key]]:
                assert r.headers == {"cdc-schema-version": b"1"}
    # types, spelled out once
    customer = next(r.event for r in records if r.topic == s.topic("erp", "customer") and r.event.op == "c"
                    and r.event.after["no"] == "C2")
    assert customer.after["salesperson_code"] is None and customer.after["credit_limit"] == "0.00"
    salesperson = next(r.event for r in records if r.topic == s.topic("erp", "salesperson") and r.event.op == "u")
    assert salesperson.after["blocked"] is True and salesperson.before["blocked"] is False
    account = next(r.event for r in records if r.topic == s.topic("crm", "account") and r.event.op == "u")
    assert account.after["accountid"] == ACCOUNT_A and account.after["paymenttermscode"] == 2
    assert account.before["paymenttermscode"] is None and account.after["customertypecode"] == 3
    currency = next(r.event for r in records if r.topic == s.topic("erp", "currency") and r.event.op == "c"
                    and r.event.after["code"] == "EUR")
    assert currency.after["description"] == "Euro 😀 Ünïcode"
    ids = [r.event.event_id for r in records]
    assert len(set(ids)) == len(ids)


async def test_status_reports_slot_position_and_lag(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("lag", heartbeat_interval=0.5)
    async with running_capture(s, ["erp"]):
        conn = await capture_env.connect("erp")
        try:
            await insert(conn, "unit_of_measure", {"code": f"L{TOKEN[:4]}", "description": "lag"})
            written = await conn.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
        finally:
            await conn.close()

        async def caught_up() -> Any:
            lag = await capture_lag(s, "erp")
            return lag if (lag.confirmed_lsn or 0) >= written and lag.events_published else None

        lag = await wait_until(caught_up, 30, "the slot to pass the write")
        assert lag.slot_exists and lag.capture_running and lag.lag_bytes is not None
        assert lag.oldest_unpublished_age is not None and lag.oldest_unpublished_age < 5
        assert lag.last_published_at is not None and lag.events_published >= 1
    # capture stopped: the age of what waits comes from peeking at the slot
    conn = await capture_env.connect("erp")
    try:
        await insert(conn, "unit_of_measure", {"code": f"M{TOKEN[:4]}", "description": "waiting"})
    finally:
        await conn.close()
    stopped = await capture_lag(s, "erp")
    assert not stopped.capture_running and not stopped.slot_active
    assert stopped.lag_bytes and stopped.lag_bytes > 0
    assert stopped.age_source == "probe" and stopped.oldest_unpublished_age is not None
    assert 0 <= stopped.oldest_unpublished_age < 60
    assert stopped.last_published_at == lag.last_published_at, "the last run's progress is still readable"


# ------------------------------------------------------------------ loop prevention


async def test_writes_tagged_with_an_applier_origin_are_not_published(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("origin", heartbeat_interval=1.0)
    origin = f"cdc_applier_test_{TOKEN}"
    foreign = f"someone_else_{TOKEN}"
    async with running_capture(s, ["erp"]):
        tagged = await capture_env.connect("erp")
        plain = await capture_env.connect("erp")
        try:
            for name in (origin, foreign):
                await plain.execute("SELECT pg_replication_origin_create($1)", name)
            await insert(plain, "currency", {"code": "KEEP", "description": "plain"})
            await tagged.execute("SELECT pg_replication_origin_session_setup($1)", origin)
            await insert(tagged, "currency", {"code": "ECHO", "description": "from an applier"})
            await update(tagged, "currency", "code", "KEEP", {"description": "changed by an applier"})
            async with tagged.transaction():
                await insert(tagged, "currency", {"code": "ECHO2", "description": "applier txn"})
                await tagged.execute("DELETE FROM currency WHERE code = 'ECHO'")
            await tagged.execute("SELECT pg_replication_origin_session_reset()")
            await tagged.execute("SELECT pg_replication_origin_session_setup($1)", foreign)
            await insert(tagged, "currency", {"code": "OTHER", "description": "foreign origin"})
            await tagged.execute("SELECT pg_replication_origin_session_reset()")
            await insert(plain, "currency", {"code": "AFTER", "description": "plain again"})
        finally:
            with contextlib.suppress(asyncpg.PostgresError):
                await tagged.execute("SELECT pg_replication_origin_session_reset()")
            await tagged.close()
            for name in (origin, foreign):
                with contextlib.suppress(asyncpg.PostgresError):
                    await plain.execute("SELECT pg_replication_origin_drop($1)", name)
            await plain.close()

        async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "currency")]) as reader:
            await reader.until(lambda rs: any(r.key == {"code": "AFTER"} for r in rs), 60, "the sentinel")
            await reader.read_to_end()
            codes = [(r.event.op, r.key["code"]) for r in sorted(reader.records, key=lambda r: r.event.position)]
    assert codes == [("c", "KEEP"), ("c", "OTHER"), ("c", "AFTER")]


# ------------------------------------------------------------------ crash safety


async def test_sigkill_mid_transaction_loses_no_committed_change(capture_env: CaptureEnv, tmp_path) -> None:
    """Kill -9 while a large transaction is being published (some of its events are on the topic, its end is not
    confirmed to the server), write more while capture is down, restart: every committed change is on the topic,
    the ones published twice carry the same event id."""
    s = capture_env.settings_for("kill", heartbeat_interval=1.0)
    log = tmp_path / "capture.log"
    expected: set[tuple[str, str, str]] = set()  # (key, op, unit_price) of every committed change
    conn = await capture_env.connect("erp")
    big = 40_000

    async def write(first: int, transactions: int, rows: int = 10) -> None:
        for t in range(first, first + transactions):
            keys = [f"K{TOKEN[:3]}{t:05d}_{r:02d}" for r in range(rows)]
            async with conn.transaction():
                await conn.executemany("INSERT INTO item (no, description, unit_price) VALUES ($1, $2, 0)",
                                       [(k, f"row {k} ✓") for k in keys])
                await conn.execute("UPDATE item SET unit_price = $2 WHERE no = $1", keys[0], Decimal(f"{t}.25"))
            expected.update((k, "c", "0.00") for k in keys)
            expected.add((keys[0], "u", f"{t}.25"))

    proc = CaptureProcess(s, "erp", log).start()
    try:
        await wait_until(capture_ready(s, ["erp"], proc.alive), 120, "capture to start")
        proc.kill()  # idle: nothing lost, nothing to redo
        await conn.execute("INSERT INTO item (no, description, unit_price) "
                           "SELECT 'BIG' || g, 'one transaction ✓', 0 FROM generate_series(1, $1) g", big)
        expected.update((f"BIG{g}", "c", "0.00") for g in range(1, big + 1))
        await write(0, 300)  # and 3,300 changes in small transactions after it
        proc = CaptureProcess(s, "erp", log).start()
        async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "item")]) as reader:
            await reader.until(lambda rs: len(rs) >= 500, 120, "the first events of the large transaction")
            proc.kill()
            killed_after = len(reader.records)
            assert killed_after < big, "killed while the large transaction was being published"
            await write(300, 300)  # committed while capture is down
            proc = CaptureProcess(s, "erp", log).start()

            def complete(rs: list[Record]) -> bool:
                return expected <= {(r.key["no"], r.event.op, r.event.row["unit_price"]) for r in rs}

            records = await reader.until(complete, 300, "every committed change after the restart")
        assert proc.stop() == 0, "SIGTERM stops capture cleanly"
    finally:
        if proc.alive():
            proc.kill()
        await conn.close()

    by_id: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_id[r.event.event_id].append(r)
    duplicates = sum(len(copies) - 1 for copies in by_id.values())
    print(f"\nSIGKILL after {killed_after} events on the topic: {len(expected)} changes committed, "
          f"{len(records)} records, {duplicates} duplicates (same event_id)")
    assert len(by_id) == len(expected), "one event id per committed change"
    assert duplicates >= killed_after, "the large transaction's end was never confirmed: what was on the topic " \
                                       "before the kill is published again"
    for copies in by_id.values():  # a duplicate is the same change: same id, same content
        first = copies[0].event.model_dump(exclude={"ts_ms"})
        assert all(c.event.model_dump(exclude={"ts_ms"}) == first for c in copies[1:])
    for key, recs in by_key(records, "no").items():  # per key, first copies are in commit order
        firsts, seen = [], set()
        for r in recs:
            if r.event.event_id not in seen:
                seen.add(r.event.event_id)
                firsts.append(r.event.position)
        assert firsts == sorted(firsts), f"order of {key}"


async def test_a_clean_stop_and_restart_publishes_nothing_twice(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("restart", heartbeat_interval=5.0)
    topic = s.topic("erp", "unit_of_measure")
    conn = await capture_env.connect("erp")
    try:
        async with running_capture(s, ["erp"]):
            for code in ("U1", "U2", "U3"):
                await insert(conn, "unit_of_measure", {"code": code, "description": "first run"})
            async with TopicReader(s.kafka_bootstrap, [topic]) as reader:
                await reader.until(lambda rs: len(rs) >= 3, 60, "the first run's events")
        async with running_capture(s, ["erp"]):  # stopped right after publishing: the slot was advanced on stop
            await update(conn, "unit_of_measure", "code", "U1", {"description": "second run"})
            async with TopicReader(s.kafka_bootstrap, [topic]) as reader:
                records = await reader.until(lambda rs: any(r.event.op == "u" for r in rs), 60, "the update")
                await reader.poll()
    finally:
        await conn.close()
    assert [(r.event.op, r.key["code"]) for r in sorted(reader.records, key=lambda r: r.event.position)] == [
        ("c", "U1"), ("c", "U2"), ("c", "U3"), ("u", "U1")]
    assert len({r.event.event_id for r in records}) == len(records)


# ------------------------------------------------------------------ bounded memory


async def test_a_200k_row_transaction_streams_in_bounded_memory(capture_env: CaptureEnv, tmp_path) -> None:
    rows = 200_000
    s = capture_env.settings_for("bulk", heartbeat_interval=1.0)
    proc = CaptureProcess(s, "erp", tmp_path / "capture.log").start()
    conn = await capture_env.connect("erp")
    try:
        await wait_until(capture_ready(s, ["erp"], proc.alive), 120, "capture to start")
        await conn.execute("INSERT INTO item (no, description, unit_price) "
                           "SELECT 'B' || g, repeat('bulk ✓ ', 8) || g, g / 100.0 FROM generate_series(1, $1) g",
                           rows)
        committed = await conn.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
        async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "item")]) as reader:
            async def published() -> bool:
                assert proc.alive(), f"capture died; see {tmp_path / 'capture.log'}"
                return await reader.count() >= rows

            await wait_until(published, 300, f"{rows} events", interval=0.5)
            await reader.until(lambda rs: len(rs) >= 10, 30, "some events")
            sample = reader.records[0].event
        assert sample.op == "c" and sample.source.table == "item"

        async def advanced() -> bool:
            lsn = await conn.fetchval("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 FROM pg_replication_slots "
                                      "WHERE slot_name = $1", slot_name(s, "erp"))
            return lsn >= committed

        await wait_until(advanced, 60, "the slot to pass the transaction")
        peak = proc.peak_rss_mb()
        print(f"\n200k-row transaction: capture peak RSS (VmHWM) {peak:.0f} MB")
        assert peak < 400
        assert await reader_count(s, rows) == rows, "published once"
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.kill()
        await conn.close()


async def reader_count(s: Settings, at_least: int) -> int:
    async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "item")]) as reader:
        return await reader.count()


@pytest.fixture(autouse=True)
def _quiet_aiokafka(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="aiokafka")


# ------------------------------------------------------------------ truncate, heartbeat, reconnection


async def test_truncate_is_logged_and_not_published(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("truncate", heartbeat_interval=1.0)
    with structlog.testing.capture_logs() as logs:
        async with running_capture(s, ["crm"]):
            conn = await capture_env.connect("crm")
            try:
                await insert(conn, "uomschedule", {"uomscheduleid": str(uuid.uuid4()), "name": "BEFORE"})
                await conn.execute("TRUNCATE uomschedule CASCADE")
                await insert(conn, "uomschedule", {"uomscheduleid": str(uuid.uuid4()), "name": "AFTER"})
            finally:
                await conn.close()
            async with TopicReader(s.kafka_bootstrap, [s.topic("crm", "uomschedule")]) as reader:
                records = await reader.until(lambda rs: len(rs) >= 2, 60, "the inserts around the truncate")
    assert [(r.event.op, r.event.after["name"]) for r in sorted(records, key=lambda r: r.event.position)] == [
        ("c", "BEFORE"), ("c", "AFTER")]
    warnings = [e for e in logs if e["log_level"] == "warning" and "truncate" in e["event"]]
    assert {w["table"] for w in warnings} >= {"public.uomschedule"}
    assert all(w["system"] == "crm" for w in warnings)


async def test_heartbeats_advance_an_idle_slot(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("heartbeat", heartbeat_interval=0.3)
    async with running_capture(s, ["erp"]):
        conn = await capture_env.connect("erp")
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS not_mapped (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO not_mapped VALUES (1) ON CONFLICT DO NOTHING")  # WAL, no events
            mark = await conn.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")

            async def past_mark() -> bool:
                lsn = await conn.fetchval("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 "
                                          "FROM pg_replication_slots WHERE slot_name = $1", slot_name(s, "erp"))
                return lsn >= mark

            await wait_until(past_mark, 30, "the slot to move past idle WAL")
        finally:
            await conn.close()
        async with TopicReader(s.kafka_bootstrap, [s.topic("erp", t) for t in ERP]) as reader:
            await reader.poll()
            assert reader.records == [], "heartbeats are not events"


async def test_changes_are_streamed_to_capture_not_peeked(capture_env: CaptureEnv) -> None:
    """The slot is held by a walsender serving capture's replication connection; no backend peeks at it."""
    s = capture_env.settings_for("stream", heartbeat_interval=1.0)
    database = capture_env.dsns["erp"].rsplit("/", 1)[1]
    async with running_capture(s, ["erp"]):
        conn = await capture_env.connect("erp")
        try:
            await insert(conn, "currency", {"code": "PUSH", "description": "pushed"})
            async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "currency")]) as reader:
                await reader.until(lambda rs: any(r.key == {"code": "PUSH"} for r in rs), 60, "the change")
            holder = await conn.fetchrow(
                "SELECT a.backend_type, a.application_name, r.state FROM pg_replication_slots s "
                "JOIN pg_stat_activity a ON a.pid = s.active_pid JOIN pg_stat_replication r ON r.pid = s.active_pid "
                "WHERE s.slot_name = $1", slot_name(s, "erp"))
            peeking = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE '%slot_peek%' "
                "AND pid <> pg_backend_pid()", database)
        finally:
            await conn.close()
    assert holder is not None and dict(holder) == {"backend_type": "walsender", "application_name": "cdc-capture-erp",
                                                   "state": "streaming"}
    assert peeking == 0


async def test_capture_reconnects_after_losing_its_database_connection(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("reconnect", heartbeat_interval=1.0)
    database = capture_env.dsns["erp"].rsplit("/", 1)[1]
    async with running_capture(s, ["erp"]):
        conn = await capture_env.connect("erp")
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'cdc-capture-erp' AND datname = $1", database)
            assert killed == 2, "its SQL connection and its walsender"
            await insert(conn, "currency", {"code": "RECON", "description": "after the reconnect"})
        finally:
            await conn.close()
        async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "currency")]) as reader:
            await reader.until(lambda rs: any(r.key == {"code": "RECON"} for r in rs), 60, "the change")


async def test_a_slot_dropped_under_capture_stops_it_and_a_restart_creates_it(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("dropped", heartbeat_interval=1.0)
    slot = slot_name(s, "erp")
    stop = asyncio.Event()
    task = asyncio.create_task(run_capture(s, ["erp"], stop))
    conn = await capture_env.connect("erp")
    try:
        await wait_until(capture_ready(s, ["erp"], lambda: not task.done()), 120, "capture to start")

        async def dropped() -> bool:  # the walsender must go first; capture may take the slot back in between
            await conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                               "WHERE slot_name = $1 AND active_pid IS NOT NULL", slot)
            try:
                await conn.execute("SELECT pg_drop_replication_slot($1)", slot)
            except asyncpg.ObjectInUseError:
                return False
            return True

        await wait_until(dropped, 30, "the slot to be dropped")
        with pytest.raises(ConfigError, match=f"replication slot {slot} was dropped while capture ran; start "
                                              "capture again"):
            await asyncio.wait_for(task, 60)
        progress_path(s, slot).unlink()  # so that `running_capture` waits for the new run
        async with running_capture(s, ["erp"]):  # started again: the slot is created, new changes flow
            await insert(conn, "currency", {"code": "AGAIN", "description": "after the drop"})
            async with TopicReader(s.kafka_bootstrap, [s.topic("erp", "currency")]) as reader:
                await reader.until(lambda rs: any(r.key == {"code": "AGAIN"} for r in rs), 60, "the change")
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()


# ------------------------------------------------------------------ start-up errors and topics


async def test_a_role_without_replication_is_told_what_to_grant(capture_env: CaptureEnv, tmp_path) -> None:
    role = f"cdc_test_norepl_{capture_env.token}"
    admin = await capture_env.connect("erp")
    await admin.execute(
        f"CREATE ROLE {quote_ident(role)} LOGIN PASSWORD 'pw-without-replication' NOREPLICATION NOSUPERUSER")
    try:
        dsn = capture_env.dsns["erp"]
        parts = urlsplit(dsn)
        own = urlunsplit(parts._replace(netloc=f"{role}:pw-without-replication@{parts.hostname}:{parts.port}"))
        s = capture_env.settings_for("norepl").model_copy(update={"erp_dsn": SecretStr(own)})
        cli = CaptureProcess(s, "erp", tmp_path / "cli.log").start()
        assert cli.proc.wait(timeout=60) == ConfigError.exit_code
        lines = [line for line in (tmp_path / "cli.log").read_text().splitlines() if line.startswith("error:")]
        assert lines == [f"error: role {role} may not start replication on erp: ALTER ROLE {role} REPLICATION "
                         "(and a pg_hba.conf 'replication' line)"]
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(role)}")
        await admin.close()


async def test_start_up_problems_are_one_line_errors(capture_env: CaptureEnv, tmp_path) -> None:
    admin = await capture_env.connect("erp")
    bare = f"cdc_test_cap_{capture_env.token}_bare"
    await admin.execute(f"CREATE DATABASE {quote_ident(bare)}")
    try:
        s = capture_env.settings_for("errors").model_copy(
            update={"erp_dsn": SecretStr(capture_env.dsns["erp"].rsplit("/", 1)[0] + "/" + bare)})
        with pytest.raises(ConfigError, match=r"mapped table public\.currency does not exist"):
            await run_capture(s, ["erp"], asyncio.Event())
        bare_conn = await asyncpg.connect(s.dsn("erp"))
        try:
            await bare_conn.execute((REPO / "cdc" / "demo" / "erp.sql").read_text())
            await bare_conn.execute("ALTER TABLE item DROP CONSTRAINT item_pkey")
        finally:
            await bare_conn.close()
        with pytest.raises(ConfigError, match=r"mapped table public\.item has no primary key"):
            await run_capture(s, ["erp"], asyncio.Event())
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(bare)} WITH (FORCE)")
        await admin.close()
    unreachable = capture_env.settings_for("down").model_copy(
        update={"erp_dsn": SecretStr("postgresql://cdc:secret@127.0.0.1:1/erp")})
    with pytest.raises(ServiceUnavailable, match=r"erp database at 127\.0\.0\.1:1/erp is unreachable") as info:
        await run_capture(unreachable, ["erp"], asyncio.Event())
    assert "secret" not in str(info.value)
    cli = CaptureProcess(unreachable, "erp", tmp_path / "cli.log").start()
    assert cli.proc.wait(timeout=60) == ServiceUnavailable.exit_code
    lines = [line for line in (tmp_path / "cli.log").read_text().splitlines() if line.startswith("error:")]
    assert lines == ["error: erp database at 127.0.0.1:1/erp is unreachable: "
                     + lines[0].split("unreachable: ", 1)[1]]


async def test_ensure_topics_is_idempotent_and_reports_refusals(capture_env: CaptureEnv) -> None:
    s = capture_env.settings_for("topics", topic_partitions=3)
    wanted = [s.topic("erp", "one"), s.topic("crm", "two")]
    first, second = await asyncio.gather(ensure_topics(s, wanted), ensure_topics(s, wanted))
    assert sorted(first + second) == sorted(wanted), "each topic created once, the other call is fine with it"
    assert await ensure_topics(s, wanted) == []
    assert set(await ensure_topics(s, mapping=load_mapping_file(s.mapping_file))) == (
        {s.topic(system, t) for system, tables in (("erp", ERP), ("crm", CRM)) for t in tables}
        | {s.dead_letter_topic})
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    assert [len(t["partitions"]) for t in described] == [3, 3]
    with pytest.raises(TopicError, match="refused to create topics: .*bad name"):
        await ensure_topics(s, [f"{s.topic_prefix}.bad name!"])
