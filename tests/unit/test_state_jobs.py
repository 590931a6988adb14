from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from cdc.state.jobs import COUNTERS, Counts, id_range, window_start


def test_counts_add_counter_by_counter():
    a = Counts(inserted=1, modified=2, failed=3)
    b = Counts(inserted=10, deleted=4, failed=1, uncoupled=7)
    assert a + b == Counts(inserted=11, modified=2, deleted=4, failed=4, uncoupled=7)
    assert sum([a, b], Counts()) == a + b
    assert a + Counts() == a


def test_counts_has_the_eight_counters_in_order():
    assert COUNTERS == ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
                        "uncoupled")
    assert list(Counts(coupled=2).as_dict().items())[6] == ("coupled", 2)


def test_counts_of_a_mapping_refuses_unknown_names():
    assert Counts.of({"skipped": 2}) == Counts(skipped=2)
    with pytest.raises(ValueError, match="unknown job counters \\['insertd'\\]"):
        Counts.of({"insertd": 1})
    with pytest.raises(TypeError):
        Counts() + {"inserted": 1}  # type: ignore[operator]


def test_live_windows_align_on_the_epoch_whatever_the_time_zone():
    at = datetime(2026, 3, 1, 10, 59, 59, 999999, tzinfo=UTC)
    assert window_start(at, 3600) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert window_start(at + timedelta(microseconds=1), 3600) == datetime(2026, 3, 1, 11, tzinfo=UTC)
    tokyo = at.astimezone(timezone(timedelta(hours=9)))
    assert window_start(tokyo, 3600) == window_start(at, 3600)
    assert window_start(at, 900) == datetime(2026, 3, 1, 10, 45, tzinfo=UTC)


def test_live_windows_need_an_aware_time_and_a_positive_length():
    with pytest.raises(ValueError, match="aware"):
        window_start(datetime(2026, 3, 1), 60)
    with pytest.raises(ValueError, match="at least one second"):
        window_start(datetime(2026, 3, 1, tzinfo=UTC), 0)


def test_id_range_spans_every_uuid_with_the_prefix():
    low, high = id_range("AB12-3")
    assert low == UUID("ab123000-0000-0000-0000-000000000000")
    assert high == UUID("ab123fff-ffff-ffff-ffff-ffffffffffff")
    full = "f6da5ef1-593c-4b55-a1a2-8f7f3aed11ec"
    assert id_range(full) == (UUID(full), UUID(full))


@pytest.mark.parametrize("bad", ["", "xyz", "12%", "0" * 33])
def test_id_range_refuses_what_cannot_start_a_uuid(bad):
    with pytest.raises(ValueError, match="not a job id"):
        id_range(bad)
