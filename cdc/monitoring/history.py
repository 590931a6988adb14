"""A bounded ring of samples for the charts: per partition lag, per topic rate, capture lag, open errors.

`series()` gives aligned arrays (None where a value was unknown at that time) for the last minutes; `point()` gives
the newest sample in the same shape, which the live pages append to their arrays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cdc.monitoring.model import Snapshot


@dataclass(frozen=True)
class Sample:
    t: float  # Unix seconds
    lag: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> lag
    rate: dict[str, float | None] = field(default_factory=dict)  # topic -> messages/s in
    lag_total: int | None = None
    rate_total: float | None = None
    capture_bytes: dict[str, int | None] = field(default_factory=dict)
    capture_seconds: dict[str, float | None] = field(default_factory=dict)
    errors_open: int | None = None
    dead_letter: int | None = None

    @classmethod
    def of(cls, snapshot: Snapshot) -> Sample:
        dlq = snapshot.dead_letter
        return cls(
            t=snapshot.taken_at.timestamp(),
            lag={t.name: {p.partition: p.lag for p in t.partitions if p.lag is not None}
                 for t in snapshot.change_topics if t.exists},
            rate={t.name: t.rate for t in snapshot.change_topics if t.exists},
            lag_total=snapshot.lag_total, rate_total=snapshot.rate_total,
            capture_bytes={c.system: c.lag_bytes for c in snapshot.capture},
            capture_seconds={c.system: c.lag_seconds for c in snapshot.capture},
            errors_open=snapshot.errors_open,
            dead_letter=dlq.retained if dlq is not None and dlq.exists else None)


class History:
    """The newest `size` samples (older ones fall off)."""

    def __init__(self, size: int = 300) -> None:
        if size < 2:
            raise ValueError("a history keeps at least two samples")
        self.samples: deque[Sample] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, sample: Sample | Snapshot) -> Sample:
        if isinstance(sample, Snapshot):
            sample = Sample.of(sample)
        self.samples.append(sample)
        return sample

    def window(self, seconds: float | None = None) -> list[Sample]:
        if not self.samples or seconds is None:
            return list(self.samples)
        newest = self.samples[-1].t
        return [s for s in self.samples if s.t >= newest - seconds]

    def series(self, seconds: float | None = None) -> dict[str, Any]:
        samples = self.window(seconds)
        topics = sorted({name for s in samples for name in s.lag} | {name for s in samples for name in s.rate})
        systems = sorted({name for s in samples for name in s.capture_bytes})
        partitions = {name: sorted({p for s in samples for p in s.lag.get(name, {})}) for name in topics}
        return {
            "t": [s.t for s in samples],
            "lag_total": [s.lag_total for s in samples],
            "rate_total": [s.rate_total for s in samples],
            "errors_open": [s.errors_open for s in samples],
            "dead_letter": [s.dead_letter for s in samples],
            "topics": {name: {
                "lag": {str(p): [s.lag.get(name, {}).get(p) for s in samples] for p in partitions[name]},
                "rate": [s.rate.get(name) for s in samples],
            } for name in topics},
            "capture": {name: {"bytes": [s.capture_bytes.get(name) for s in samples],
                               "seconds": [s.capture_seconds.get(name) for s in samples]} for name in systems},
        }


def point(sample: Sample) -> dict[str, Any]:
    """One sample in the shape of `History.series`, with scalars in place of arrays."""
    return {
        "t": sample.t, "lag_total": sample.lag_total, "rate_total": sample.rate_total,
        "errors_open": sample.errors_open, "dead_letter": sample.dead_letter,
        "topics": {name: {"lag": {str(p): v for p, v in sample.lag.get(name, {}).items()},
                          "rate": sample.rate.get(name)} for name in sorted(set(sample.lag) | set(sample.rate))},
        "capture": {name: {"bytes": sample.capture_bytes.get(name), "seconds": sample.capture_seconds.get(name)}
                    for name in sorted(sample.capture_bytes)},
    }
