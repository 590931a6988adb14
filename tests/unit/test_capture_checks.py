"""Capture's start-up checks, error translation, lag arithmetic and partitioning, without a database."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from cdc.capture.heartbeat import HeartbeatClock
from cdc.capture.lag import FRESH_SECONDS, lag_of, live_age
from cdc.capture.lsn import format_lsn, parse_lsn
from cdc.capture.preflight import check_source
from cdc.capture.progress import Progress, read_progress, write_progress
from cdc.capture.slot import SlotState, slot_error, slot_name
from cdc.errors import ConfigError, ServiceUnavailable
from cdc.settings import Settings
from cdc.topics.admin import ensure_topics
from cdc.topics.partitioner import murmur2, partition_for
from cdc.topics.producer import start_producer


class StubConnection:
    """Answers the catalog queries of `check_source` from fixed data."""

    def __init__(self, *, wal_level: str = "logical", may_decode: bool = True, encoding: str = "UTF8",
                 tables: dict[str, list[str]] | None = None, keys: dict[str, list[str]] | None = None) -> None:
        self.server = {"wal_level": wal_level, "encoding": encoding, "may_decode": may_decode, "role": "cdc",
                       "db": "erp"}
        self.tables = tables or {}
        self.keys = keys or {}

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any]:
        return self.server

    async def fetch(self, query: str, schema: str, names: list[str]) -> list[dict[str, Any]]:
        if "indisprimary" in query:
            return [{"table_name": t, "column_name": c} for t in names for c in self.keys.get(t, [])]
        return [{"table_name": t, "column_name": c, "type_name": "text", "max_length": None, "nullable": False,
                 "has_default": False, "scale": None, "default_expression": None,
                 "identity": "", "generated": False} for t in names for c in self.tables.get(t, [])]


TABLES = [("public", "currency"), ("public", "customer")]


async def test_a_ready_source_gives_primary_keys() -> None:
    conn = StubConnection(tables={"currency": ["code", "x"], "customer": ["no", "name"]},
                          keys={"currency": ["code"], "customer": ["no"]})
    assert await check_source(conn, "erp", TABLES) == {("public", "currency"): ("code",),
                                                       ("public", "customer"): ("no",)}


@pytest.mark.parametrize(("conn", "message"), [
    (StubConnection(wal_level="replica"), "wal_level is 'replica'; capture needs wal_level=logical"),
    (StubConnection(encoding="LATIN1"), "server encoding is LATIN1"),
    (StubConnection(tables={"currency": ["code"]}, keys={"currency": ["code"]}),
     "mapped table public.customer does not exist"),
    (StubConnection(tables={"currency": ["code"], "customer": ["no"]}, keys={"currency": ["code"]}),
     "mapped table public.customer has no primary key"),
])
async def test_unusable_sources_are_one_line_config_errors(conn: StubConnection, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        await check_source(conn, "erp", TABLES)
    assert "\n" not in str(info.value) and str(info.value).startswith("erp database 'erp'")


async def test_a_role_without_replication_is_told_what_to_grant() -> None:
    with pytest.raises(ConfigError) as info:
        await check_source(StubConnection(may_decode=False), "erp", TABLES)
    assert str(info.value) == ("role cdc may not start replication on erp: ALTER ROLE cdc REPLICATION "
                               "(and a pg_hba.conf 'replication' line)")


def test_slot_errors_a_user_must_fix_become_config_errors() -> None:
    missing_plugin = asyncpg.UndefinedFileError('could not access file "pgoutput": No such file or directory')
    assert "pgoutput output plugin is unavailable" in str(slot_error("cdc_erp", missing_plugin))
    full = asyncpg.ConfigurationLimitExceededError("all replication slots are in use")
    assert "max_replication_slots" in str(slot_error("cdc_erp", full))
    dropped = asyncpg.UndefinedObjectError('publication "cdc_erp" does not exist')
    assert "cdc capture reset" in str(slot_error("cdc_erp", dropped))
    gone = asyncpg.UndefinedObjectError('replication slot "cdc_erp" does not exist')
    assert "was dropped while capture ran" in str(slot_error("cdc_erp", gone))
    other = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    assert slot_error("cdc_erp", other) is other


def test_slot_names_follow_the_topic_prefix() -> None:
    assert slot_name(Settings(), "erp") == "cdc_erp"
    assert slot_name(Settings(topic_prefix="Test.Run-1"), "crm") == "test_run_1_crm"


def test_lsn_text_round_trip() -> None:
    assert format_lsn(0x16B3748) == "0/16B3748"
    assert parse_lsn("1/A0") == (1 << 32) + 0xA0
    assert parse_lsn(format_lsn(123456789012)) == 123456789012


def test_murmur2_partitioning_matches_kafka_clients() -> None:
    for length in range(0, 70):
        for _ in range(30):
            key = os.urandom(length)
            assert murmur2(key) == aiokafka_murmur2(key)
            assert partition_for(key, 6) == DefaultPartitioner()(key, list(range(6)), list(range(6)))
    assert partition_for(b'{"no":"C1"}', 6) == partition_for(b'{"no":"C1"}', 6)


def test_heartbeat_clock() -> None:
    now = [100.0]
    clock = HeartbeatClock(10, clock=lambda: now[0])
    assert clock.due()
    clock.beat()
    now[0] += 9.9
    assert not clock.due()
    now[0] += 0.1
    assert clock.due()
    assert not HeartbeatClock(0).due()


def test_live_age_from_progress() -> None:
    now = time.time()
    fresh = Progress("erp", "cdc_erp", updated_at=now - 1)
    assert live_age(None, now) is None
    assert live_age(replace(fresh, caught_up=True), now) == 0.0
    assert live_age(replace(fresh, pending_since=now - 7.5), now) == pytest.approx(7.5)
    assert live_age(replace(fresh, caught_up=True, updated_at=now - FRESH_SECONDS - 1), now) is None
    assert live_age(replace(fresh, caught_up=True, stopped=True), now) is None


def test_lag_of_combines_slot_progress_and_probe() -> None:
    now = time.time()
    state = SlotState("cdc_erp", "pgoutput", "erp", False, None, 900, 1000, "reserved")
    progress = Progress("erp", "cdc_erp", updated_at=now, caught_up=True, published_lsn=1000, published_at=now - 3,
                        events=12)
    lag = lag_of("erp", "cdc_erp", state, 1500, progress, now)
    assert (lag.lag_bytes, lag.oldest_unpublished_age, lag.age_source) == (500, 0.0, "capture")
    assert lag.capture_running and lag.events_published == 12 and lag.last_published_lsn == 1000
    stopped = lag_of("erp", "cdc_erp", state, 1500, replace(progress, stopped=True), now, probed_age=4.0)
    assert (stopped.oldest_unpublished_age, stopped.age_source, stopped.capture_running) == (4.0, "probe", False)
    missing = lag_of("erp", "cdc_erp", None, 1500, None, now)
    assert not missing.slot_exists and missing.lag_bytes is None and missing.age_source == "unknown"


def test_progress_file_round_trip(tmp_path) -> None:
    path = tmp_path / "capture" / "cdc_erp.json"
    assert read_progress(path) is None
    progress = Progress("erp", "cdc_erp", updated_at=1.5, published_lsn=42, events=3)
    write_progress(path, progress)
    assert read_progress(path) == progress
    path.write_text("{not json")
    assert read_progress(path) is None


async def test_unreachable_broker_is_service_unavailable_within_the_timeout() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=r"Kafka at 127\.0\.0\.1:1 is unreachable: no broker answered"):
        await start_producer(settings, timeout=1.0)
    with pytest.raises(ServiceUnavailable, match="Kafka at 127.0.0.1:1 is unreachable"):
        await ensure_topics(settings, ["x"], timeout=1.0)
    assert time.monotonic() - started < 10


def test_a_slot_at_the_end_of_the_wal_has_nothing_waiting() -> None:
    state = SlotState("cdc_erp", "pgoutput", "erp", False, None, 900, 1500, "reserved")
    lag = lag_of("erp", "cdc_erp", state, 1500, None, time.time())
    assert (lag.lag_bytes, lag.oldest_unpublished_age, lag.age_source) == (0, 0.0, "slot")
