"""This process's own Prometheus instruments, in the default registry.

They live here, below the engine and the dashboard, so the worker can feed them without importing the dashboard;
`cdc.monitoring.metrics` serves them on `/metrics` (merged over processes in multiprocess mode).
"""

from __future__ import annotations

from prometheus_client import Histogram

APPLY_LATENCY = Histogram(
    "cdc_apply_latency_seconds",
    "Seconds from a change's commit in its source system to its effect committed in the other system.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)


def observe_apply_latency(seconds: float) -> None:
    """Record one applied change's latency (source commit to destination commit), in seconds."""
    APPLY_LATENCY.observe(max(0.0, float(seconds)))
