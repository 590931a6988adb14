"""Dates and timestamps beyond Python's datetime: the count PostgreSQL stores survives every conversion."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from cdc import temporal
from cdc.temporal import Beyond, moment, parse, ticks_of

DATE_DAYS = st.integers(-2_451_545, 2_147_483_494 // 1000)  # 4713 BC .. far past 9999
TS_MICROS = st.integers(-211_813_488_000_000_000, 9_223_371_331_200_000_000 // 100)


@given(DATE_DAYS)
def test_a_date_count_round_trips_through_its_value_and_its_text(days: int) -> None:
    value = moment("date", days)
    assert ticks_of("date", value) == days
    assert ticks_of("date", parse("date", value.isoformat() if isinstance(value, dt.date) else str(value))) == days


@given(TS_MICROS, st.sampled_from(["timestamp", "timestamptz"]))
def test_a_timestamp_count_round_trips_through_its_value_and_its_text(micros: int, kind: str) -> None:
    value = moment(kind, micros)  # type: ignore[arg-type]
    assert ticks_of(kind, value) == micros  # type: ignore[arg-type]
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    assert ticks_of(kind, parse(kind, text)) == micros  # type: ignore[arg-type]


def test_python_range_values_stay_plain_and_the_rest_are_exact() -> None:
    assert moment("date", ticks_of("date", dt.date(9999, 12, 31))) == dt.date(9999, 12, 31)
    assert moment("date", ticks_of("date", dt.date(1, 1, 1))) == dt.date(1, 1, 1)
    assert str(parse("date", "infinity")) == "infinity" and parse("date", "infinity") != dt.date.max
    assert str(parse("date", "0044-03-15 BC")) == "0044-03-15 BC"
    assert isinstance(parse("timestamptz", "10000-01-01 00:00:00+00"), Beyond)
    assert parse("date", "2024-02-30") is None and parse("date", "soon") is None


def test_infinities_carry_across_temporal_kinds_and_days_become_midnights() -> None:
    assert str(parse("date", "-infinity").as_kind("timestamptz")) == "-infinity"  # type: ignore[union-attr]
    far = parse("date", "12000-06-01")
    assert isinstance(far, Beyond)
    assert str(far.as_kind("timestamp")) == "12000-06-01T00:00:00"
    assert temporal.parse("date", "2024-01-01T23:30:00-05:00") == dt.date(2024, 1, 1)  # as PostgreSQL reads it
