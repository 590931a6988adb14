"""Canned snapshots and a collector that needs no Kafka and no database, for the monitoring unit tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cdc.monitoring.model import (
    CaptureStats,
    ErrorRow,
    JobCounter,
    JobRow,
    MappingRow,
    PartitionStats,
    ServiceCheck,
    Snapshot,
    TopicStats,
)
from cdc.monitoring.snapshot import Collector, SectionFailed
from cdc.settings import Settings

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
JOB_ID = UUID("6f1c2d3e-0000-4000-8000-000000000001")


def partition(p: int, beginning: int, end: int, committed: int | None, *, dlq: bool = False,
              rate: float | None = None) -> PartitionStats:
    lag = None if dlq else end - (committed if committed is not None else beginning)
    return PartitionStats(partition=p, beginning=beginning, end=end, retained=end - beginning, committed=committed,
                          committed_source="state" if committed is not None else None, lag=lag, rate=rate)


def snapshot(*, taken_at: datetime = T0, kafka_ok: bool = True, errors_open: int = 1) -> Snapshot:
    topics = [
        TopicStats(name="t.erp.customer", system="erp", table="customer",
                   partitions=[partition(0, 0, 120, 100, rate=4.0), partition(1, 10, 50, None, rate=1.5)]),
        TopicStats(name="t.crm.account", system="crm", table="account",
                   partitions=[partition(0, 0, 7, 7), partition(1, 0, 0, None)]),
        TopicStats(name="t.crm.product", system="crm", table="product", exists=False),
        TopicStats(name="t.dead-letter", dead_letter=True, partitions=[partition(0, 0, 3, None, dlq=True)]),
    ] if kafka_ok else []
    return Snapshot(
        taken_at=taken_at, seconds=0.05, consumer_group="cdc-sync", topics=topics,
        capture=[
            CaptureStats(system="erp", slot="t_erp", slot_exists=True, slot_active=True, capture_running=True,
                         lag_bytes=2048, lag_seconds=1.5, age_source="capture", last_event_at=taken_at,
                         heartbeat_at=taken_at, heartbeat_interval=10.0, events_published=42),
            CaptureStats(system="crm", slot="t_crm", error="crm database at 127.0.0.1:5/crm: refused"),
        ],
        jobs=[JobRow(id=JOB_ID, mapping="CUSTOMER", kind="live", direction="to_crm", status="running",
                     started_at=taken_at - timedelta(minutes=5), finished_at=None, duration_seconds=300.0,
                     counts={"inserted": 3, "modified": 2, "deleted": 0, "unchanged": 1, "skipped": 0, "failed": 1,
                             "coupled": 3, "uncoupled": 0})],
        errors=[ErrorRow(id=7, job_id=JOB_ID, mapping="CUSTOMER", source_system="erp", source_key="10000",
                         destination_system="crm", destination_key="c-1", message="credit limit too large",
                         detail="numeric field overflow", state="open", occurrences=2, has_event=True,
                         created_at=taken_at, updated_at=taken_at)],
        errors_open=errors_open,
        mappings=[MappingRow(order=1, name="CUSTOMER", direction="both", erp_table="customer", crm_table="account",
                             erp_filter="blocked ne 'all'", sync_only_coupled=True, conflict="newest-wins",
                             deletion="uncouple", depends_on=["CURRENCY"], couplings=10, skipped=1)],
        job_counters=[JobCounter(mapping="CUSTOMER", kind="live", counter="inserted", value=3),
                      JobCounter(mapping="CUSTOMER", kind="full", counter="inserted", value=5),
                      JobCounter(mapping="CUSTOMER", kind="live", counter="failed", value=1)],
        services={"kafka": ServiceCheck(ok=kafka_ok, error=None if kafka_ok else "Kafka at x: no broker answered"),
                  "erp": ServiceCheck(ok=True), "crm": ServiceCheck(ok=False, error="crm database: refused"),
                  "state": ServiceCheck(ok=True)},
        problems=["crm database: refused"])


class StubCollector(Collector):
    """Returns a canned snapshot; the state database "answers" with `result` (or fails when it is an
    exception)."""

    def __init__(self, settings: Settings, canned: Snapshot | None = None) -> None:
        super().__init__(settings)
        self.canned = canned or snapshot()
        self.result: Any = SectionFailed("state database: not available in unit tests")
        self.calls: list[str] = []

    async def collect(self, *, full: bool = True, track: bool = True) -> Snapshot:
        return self.canned

    async def run(self, role: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
        self.calls.append(role)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result

    async def close(self) -> None:
        pass
