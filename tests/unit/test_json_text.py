"""The fast JSON path reads and writes what the standard library does."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import json_text

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_loads_equals_json(value: object) -> None:
    text = json.dumps(value)
    assert json_text.loads(text.encode()) == json.loads(text)
    assert json_text.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    b'{"n": 123456789012345678901234567890}',  # beyond 64 bits: exact, not a float
    b'{"n": NaN}',
    b'{"s": "\\ud800"}',  # a lone surrogate, which PostgreSQL then refuses as a value
    b'{"n": 1e400}',
])
def test_loads_keeps_what_json_accepts(text: bytes) -> None:
    assert repr(json_text.loads(text)) == repr(json.loads(text))


def test_loads_raises_as_json_does() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_text.loads(b"{not json")
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        json_text.loads(b'{"a": "\xff"}')


@given(JSON)
def test_dumps_sorted_is_the_same_json_value(value: object) -> None:
    assert json.loads(json_text.dumps_sorted(value)) == json.loads(json.dumps(value, sort_keys=True, default=str))


def test_dumps_sorted_writes_other_values_through_str() -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    key = uuid.UUID(int=7)
    value = {"b": moment, "a": Decimal("1.50"), "c": dt.date(2026, 1, 2), "d": key, "e": 2**70}
    assert json.loads(json_text.dumps_sorted(value)) == {
        "a": "1.50", "b": "2026-01-02 03:04:05+00:00", "c": "2026-01-02", "d": str(key), "e": 2**70}
    assert list(json.loads(json_text.dumps_sorted(value))) == ["a", "b", "c", "d", "e"]
