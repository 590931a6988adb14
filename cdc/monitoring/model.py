"""The typed snapshot: everything the dashboard, `/metrics`, `/readyz` and `cdc status` show, taken at one time.

Every text in a snapshot is safe to show: problems are redacted (no DSN, password or token) before they get here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Service = Literal["kafka", "erp", "crm", "state"]
SERVICES: tuple[Service, ...] = ("kafka", "erp", "crm", "state")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ServiceCheck(Model):
    ok: bool
    error: str | None = None
    seconds: float | None = None  # how long the check took


class PartitionStats(Model):
    partition: int
    beginning: int
    end: int
    retained: int
    committed: int | None = None  # the group's next offset (None: never consumed)
    committed_source: Literal["state", "kafka", "both"] | None = None
    lag: int | None = None  # None on topics no group consumes (the dead-letter topic)
    rate: float | None = None  # messages/s written, from end offsets between two samples
    consumed_rate: float | None = None  # messages/s processed, from committed offsets between two samples


class TopicStats(Model):
    name: str
    system: str | None = None
    table: str | None = None
    dead_letter: bool = False
    exists: bool = True
    partitions: list[PartitionStats] = Field(default_factory=list)

    @property
    def end(self) -> int:
        return sum(p.end for p in self.partitions)

    @property
    def retained(self) -> int:
        return sum(p.retained for p in self.partitions)

    @property
    def lag(self) -> int | None:
        known = [p.lag for p in self.partitions if p.lag is not None]
        return sum(known) if known else None

    @property
    def rate(self) -> float | None:
        known = [p.rate for p in self.partitions if p.rate is not None]
        return sum(known) if known else None


class CaptureStats(Model):
    system: str
    slot: str
    slot_exists: bool = False
    slot_active: bool = False
    capture_running: bool = False
    lag_bytes: int | None = None
    lag_seconds: float | None = None  # age of the oldest change not yet published
    age_source: str = "unknown"
    last_event_at: datetime | None = None  # commit time of the last transaction published
    last_published_at: datetime | None = None
    heartbeat_at: datetime | None = None  # when the running capture last reported (it does at least every second)
    heartbeat_interval: float | None = None  # seconds between the WAL heartbeats capture writes
    events_published: int | None = None
    error: str | None = None


class JobRow(Model):
    id: UUID
    mapping: str
    kind: str
    direction: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    counts: dict[str, int]
    message: str | None = None


class ErrorRow(Model):
    id: int
    job_id: UUID | None
    mapping: str
    source_system: str
    source_key: str
    destination_system: str | None
    destination_key: str | None
    message: str
    detail: str | None
    state: str
    occurrences: int
    has_event: bool
    created_at: datetime
    updated_at: datetime
    kind: str = "failure"  # or "conflict": one per coupled pair, resolved by keeping one side's values
    next_attempt_at: datetime | None = None  # parked: when the worker tries it again
    waiting: int | None = None  # parked: how many changes of the record wait


class MappingRow(Model):
    order: int  # 1-based position in dependency order
    name: str
    direction: str
    erp_table: str
    crm_table: str
    erp_filter: str = ""
    crm_filter: str = ""
    sync_only_coupled: bool
    sync_only_coupled_overridden: bool = False
    conflict: str
    deletion: str
    depends_on: list[str] = Field(default_factory=list)
    last_synced_at: datetime | None = None
    couplings: int | None = None
    skipped: int | None = None


class JobCounter(Model):
    mapping: str
    kind: str
    counter: str
    value: int


class Snapshot(Model):
    taken_at: datetime
    seconds: float  # how long collecting took
    consumer_group: str
    topics: list[TopicStats] = Field(default_factory=list)
    capture: list[CaptureStats] = Field(default_factory=list)
    jobs: list[JobRow] = Field(default_factory=list)  # the newest jobs
    errors: list[ErrorRow] = Field(default_factory=list)  # the open errors, most recently seen first
    errors_open: int | None = None
    errors_parked: int | None = None  # changes waiting for a lookup (errors in state parked)
    mappings: list[MappingRow] = Field(default_factory=list)
    job_counters: list[JobCounter] = Field(default_factory=list)  # summed over all jobs
    services: dict[str, ServiceCheck] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)

    @property
    def change_topics(self) -> list[TopicStats]:
        return [t for t in self.topics if not t.dead_letter]

    @property
    def dead_letter(self) -> TopicStats | None:
        return next((t for t in self.topics if t.dead_letter), None)

    @property
    def lag_total(self) -> int | None:
        """Consumer lag summed over the change topics; None when Kafka was not read."""
        if not self.services.get("kafka", ServiceCheck(ok=False)).ok:
            return None
        return sum(t.lag or 0 for t in self.change_topics)

    @property
    def rate_total(self) -> float | None:
        known = [t.rate for t in self.change_topics if t.rate is not None]
        return sum(known) if known else None

    def topic(self, name: str) -> TopicStats | None:
        return next((t for t in self.topics if t.name == name), None)

    def summary(self) -> dict[str, Any]:
        dlq = self.dead_letter
        return {
            "taken_at": self.taken_at.isoformat(),
            "consumer_group": self.consumer_group,
            "lag_total": self.lag_total,
            "rate_total": self.rate_total,
            "dead_letter_messages": dlq.retained if dlq is not None and dlq.exists else None,
            "errors_open": self.errors_open,
            "errors_parked": self.errors_parked,
            "services": {name: check.ok for name, check in self.services.items()},
        }

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["summary"] = self.summary()
        for topic, stats in zip(data["topics"], self.topics, strict=True):
            topic.update(end=stats.end, retained=stats.retained, lag=stats.lag, rate=stats.rate)
        return data
