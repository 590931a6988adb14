"""The bounded history behind the charts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cdc.monitoring.history import History, Sample, point
from tests.unit.monitoring_samples import T0, snapshot


def test_sample_of_a_snapshot() -> None:
    sample = Sample.of(snapshot())
    assert sample.t == T0.timestamp()
    assert sample.lag == {"t.erp.customer": {0: 20, 1: 40}, "t.crm.account": {0: 0, 1: 0}}
    assert sample.rate == {"t.erp.customer": 5.5, "t.crm.account": None}
    assert sample.lag_total == 60
    assert sample.capture_bytes == {"erp": 2048, "crm": None}
    assert sample.dead_letter == 3
    assert sample.errors_open == 1


def test_the_ring_keeps_the_newest_samples() -> None:
    history = History(size=3)
    for n in range(5):
        history.add(Sample(t=float(n), lag_total=n))
    assert len(history) == 3
    assert history.series()["t"] == [2.0, 3.0, 4.0]
    assert history.series()["lag_total"] == [2, 3, 4]
    with pytest.raises(ValueError):
        History(size=1)


def test_series_align_topics_that_come_and_go() -> None:
    history = History(size=10)
    history.add(Sample(t=1.0, lag={"a": {0: 5}}))
    history.add(Sample(t=2.0, lag={"a": {0: 3, 1: 9}, "b": {0: 1}}))
    history.add(Sample(t=3.0, lag={"b": {0: 0}}))
    series = history.series()
    assert series["topics"]["a"]["lag"] == {"0": [5, 3, None], "1": [None, 9, None]}
    assert series["topics"]["b"]["lag"] == {"0": [None, 1, 0]}


def test_window_in_seconds() -> None:
    history = History(size=10)
    for n in range(6):
        history.add(snapshot(taken_at=T0 + timedelta(seconds=10 * n)))
    assert len(history.series(seconds=20)["t"]) == 3


def test_point_has_the_shape_of_series() -> None:
    p = point(Sample.of(snapshot()))
    assert p["lag_total"] == 60
    assert p["topics"]["t.erp.customer"]["lag"] == {"0": 20, "1": 40}
    assert p["capture"]["erp"] == {"bytes": 2048, "seconds": 1.5}
