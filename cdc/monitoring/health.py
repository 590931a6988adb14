"""Health: `/healthz` (the process answers) and `/readyz` (the broker and the three databases answer, and the
consumer group's lag is under a threshold). `cdc status` and `cdc check` report the same readiness.

The threshold is `CDC_DASHBOARD_READY_MAX_LAG` (messages, summed over the change topics; default 10000).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cdc.monitoring.model import SERVICES, Snapshot, TopicStats
from cdc.settings import Settings


def ready_max_lag(settings: Settings) -> int:
    """The consumer lag above which the service is not ready (`CDC_DASHBOARD_READY_MAX_LAG`)."""
    return settings.dashboard_ready_max_lag


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: list[Check]  # kafka, erp, crm, state, consumer_lag
    consumer_lag: int | None
    max_lag: int
    reasons: list[str] = field(default_factory=list)
    topics: list[TopicStats] = field(default_factory=list)
    """The topic the worker reads for each mapped table (`cdc check` lists them), when Kafka was read."""

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "consumer_lag": self.consumer_lag, "max_lag": self.max_lag,
                "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks}, "reasons": self.reasons}


def assess(snapshot: Snapshot, max_lag: int) -> Readiness:
    """Ready when every service answered and the consumer lag is at most `max_lag`."""
    reasons: list[str] = []
    checks: list[Check] = []
    for name in SERVICES:
        check = snapshot.services.get(name)
        if check is not None and check.ok:
            took = f" in {check.seconds * 1000:.0f} ms" if check.seconds is not None else ""
            checks.append(Check(name, True, f"answers{took}"))
        else:
            detail = (check.error if check is not None else None) or f"{name}: not checked"
            checks.append(Check(name, False, detail))
            reasons.append(detail)
    lag = snapshot.lag_total
    if lag is None:
        checks.append(Check("consumer_lag", False, "unknown: Kafka was not read"))
    elif lag > max_lag:
        detail = f"consumer group {snapshot.consumer_group} is {lag} messages behind (threshold {max_lag})"
        checks.append(Check("consumer_lag", False, detail))
        reasons.append(detail)
    else:
        checks.append(Check("consumer_lag", True, f"{lag} messages behind (threshold {max_lag})"))
    return Readiness(ready=all(c.ok for c in checks), checks=checks, consumer_lag=lag, max_lag=max_lag,
                     reasons=reasons, topics=snapshot.change_topics if lag is not None else [])


async def readiness(settings: Settings) -> Readiness:
    """Readiness measured now, from a process of its own (`cdc check`): reach each service, read the lag."""
    from cdc.monitoring.snapshot import Collector

    async with Collector(settings) as collector:
        snapshot = await collector.collect(full=False, track=False)
    return assess(snapshot, ready_max_lag(settings))


def healthz() -> dict[str, str]:
    return {"status": "ok"}
