"""Prometheus metrics (`/metrics`).

Two sources:
- the latest snapshot, exposed by a custom collector, so every gauge is exactly the number the dashboard shows
  (and topics or mappings that went away disappear instead of going stale):
  `cdc_consumer_lag{topic,partition}`, `cdc_topic_end_offset{topic,partition}`, `cdc_topic_retained_messages{topic}`,
  `cdc_dead_letter_messages`, `cdc_capture_lag_bytes{system}`, `cdc_capture_lag_seconds{system}`,
  `cdc_capture_running{system}`, `cdc_events_processed_total{mapping,decision}` (the job counters summed over all
  jobs), `cdc_job_records{mapping,kind,counter}`, `cdc_errors_open`, `cdc_service_up{service}`,
  `cdc_snapshot_timestamp_seconds`;
- this process's own instruments in the default registry: `cdc_apply_latency_seconds` (a histogram the worker
  feeds through `cdc.instruments.observe_apply_latency`) and prometheus-client's process and platform metrics.

When the worker runs in another process than the dashboard (`cdc run` starts them as children), set
`PROMETHEUS_MULTIPROC_DIR` to one fresh, empty directory in every child's environment: each process then writes its
instruments there and `/metrics` serves them all, merged (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import cdc.instruments  # noqa: F401  (registers this process's instruments, so /metrics always shows them)
from cdc.monitoring.model import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SnapshotMetrics(Collector):
    """The latest snapshot as metric families (nothing before the first snapshot)."""

    def __init__(self, latest: Callable[[], Snapshot | None]) -> None:
        self.latest = latest

    def describe(self) -> list[Metric]:
        return []  # the families depend on the snapshot: do not collect at registration

    def collect(self) -> Iterator[Metric]:
        snapshot = self.latest()
        if snapshot is None:
            return
        yield from families(snapshot)


def families(snapshot: Snapshot) -> Iterator[Metric]:
    lag = GaugeMetricFamily("cdc_consumer_lag", "Messages the consumer group has still to process, per partition.",
                            labels=["topic", "partition"])
    end = GaugeMetricFamily("cdc_topic_end_offset", "The next offset to be written, per partition.",
                            labels=["topic", "partition"])
    retained = GaugeMetricFamily("cdc_topic_retained_messages", "Messages the topic retains (end - beginning).",
                                 labels=["topic"])
    for topic in snapshot.topics:
        if not topic.exists:
            continue
        retained.add_metric([topic.name], topic.retained)
        for p in topic.partitions:
            end.add_metric([topic.name, str(p.partition)], p.end)
            if p.lag is not None:
                lag.add_metric([topic.name, str(p.partition)], p.lag)
    yield lag
    yield end
    yield retained
    dlq = snapshot.dead_letter
    if dlq is not None and dlq.exists:
        yield GaugeMetricFamily("cdc_dead_letter_messages", "Messages in the dead-letter topic.", value=dlq.retained)

    capture_bytes = GaugeMetricFamily("cdc_capture_lag_bytes", "WAL bytes the replication slot trails the server.",
                                      labels=["system"])
    capture_seconds = GaugeMetricFamily("cdc_capture_lag_seconds",
                                        "Age of the oldest change not yet published to Kafka.", labels=["system"])
    running = GaugeMetricFamily("cdc_capture_running", "1 while a capture process reports progress.",
                                labels=["system"])
    for c in snapshot.capture:
        if c.lag_bytes is not None:
            capture_bytes.add_metric([c.system], c.lag_bytes)
        if c.lag_seconds is not None:
            capture_seconds.add_metric([c.system], c.lag_seconds)
        if c.error is None:
            running.add_metric([c.system], 1 if c.capture_running else 0)
    yield capture_bytes
    yield capture_seconds
    yield running

    processed = CounterMetricFamily("cdc_events_processed", "Records processed, by mapping and decision "
                                    "(the job counters summed over every job).", labels=["mapping", "decision"])
    by_decision: dict[tuple[str, str], int] = defaultdict(int)
    records = GaugeMetricFamily("cdc_job_records", "Job counters summed per mapping, job kind and counter.",
                                labels=["mapping", "kind", "counter"])
    for counter in snapshot.job_counters:
        by_decision[(counter.mapping, counter.counter)] += counter.value
        records.add_metric([counter.mapping, counter.kind, counter.counter], counter.value)
    for (mapping, decision), value in sorted(by_decision.items()):
        processed.add_metric([mapping, decision], value)
    yield processed
    yield records

    if snapshot.errors_open is not None:
        yield GaugeMetricFamily("cdc_errors_open", "Job errors still open.", value=snapshot.errors_open)
    if snapshot.errors_parked is not None:
        yield GaugeMetricFamily("cdc_errors_parked", "Changes parked, waiting for a lookup to be coupled.",
                                value=snapshot.errors_parked)
    up = GaugeMetricFamily("cdc_service_up", "1 when the service answered the last check.", labels=["service"])
    for name, check in snapshot.services.items():
        up.add_metric([name], 1 if check.ok else 0)
    yield up
    yield GaugeMetricFamily("cdc_snapshot_timestamp_seconds", "When the snapshot behind these metrics was taken.",
                            value=snapshot.taken_at.timestamp())


class _Process(Collector):
    """This process's default registry (apply latency, process and platform metrics)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry(latest: Callable[[], Snapshot | None]) -> CollectorRegistry:
    """A registry with the snapshot's metrics and the instruments of this process — or, in multiprocess mode
    (`PROMETHEUS_MULTIPROC_DIR` set), of every process writing to that directory."""
    found = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        multiprocess.MultiProcessCollector(found, path=directory)
    else:
        found.register(_Process())
    found.register(SnapshotMetrics(latest))
    return found


def render(found: CollectorRegistry) -> bytes:
    return generate_latest(found)
