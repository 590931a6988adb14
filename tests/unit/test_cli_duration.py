from datetime import timedelta

import pytest

from cdc.cli.jobs import parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", timedelta(days=7)),
    ("12h", timedelta(hours=12)),
    ("30m", timedelta(minutes=30)),
    ("45s", timedelta(seconds=45)),
    ("2w", timedelta(weeks=2)),
    ("1d12h", timedelta(days=1, hours=12)),
    (" 0S ", timedelta(0)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "7", "d", "7x", "-7d", "7d later", "1.5h"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)
