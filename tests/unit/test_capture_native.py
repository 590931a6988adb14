"""Contract of the optional C accelerators (setup.py): each gives exactly what its pure-Python twin gives — the
pgoutput column walk on well-formed, truncated and garbled messages (errors included), and Kafka's murmur2 on any
key bytes, checked against aiokafka's and the Java client's published values."""

from __future__ import annotations

import struct

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from cdc.capture import pgoutput
from cdc.capture.pgoutput import Decoder, PgOutputError
from cdc.topics import partitioner
from cdc.values import vocabulary as types
from tests.unit.pgoutput_messages import UNCHANGED, insert, relation, update

native_walk = pytest.importorskip("cdc.capture._tuples").walk
native_murmur2 = pytest.importorskip("cdc.topics._murmur2").murmur2

TYPES = [types.INT4, types.INT8, types.TEXT, types.VARCHAR, types.NUMERIC, types.BOOL, types.FLOAT8,
         types.TIMESTAMPTZ, types.TIMESTAMP, types.TIMETZ, types.JSONB, types.UUID, 1009]
TEXTS = {types.INT4: st.integers(-2**31, 2**31 - 1).map(str),
         types.INT8: st.integers(-2**63, 2**63 - 1).map(str),
         types.BOOL: st.sampled_from(["t", "f"]),
         types.FLOAT8: st.sampled_from(["1.5", "NaN", "-Infinity", "1e-07"]),
         types.TIMESTAMPTZ: st.sampled_from(["2026-01-02 03:04:05.123456+00", "2026-01-02 03:04:05+05:30",
                                               "infinity", "2000-01-01 00:00:00+00 BC"]),
         types.JSONB: st.sampled_from(['{"a": [1, 2.5, null]}', '"x"', "3"])}


def outcome(decode, data: bytes) -> object:
    try:
        return decode(data)
    except PgOutputError as exc:
        return ("error", str(exc))


def both(data: bytes, announce: bytes) -> tuple[object, object]:
    """What the decoder makes of `data` with the C walk and with the Python walk."""
    results = []
    for walk in (native_walk, None):
        original = pgoutput._walk
        pgoutput._walk = walk
        try:
            decoder = Decoder()
            decoder.decode(announce)
            results.append(outcome(decoder.decode, data))
        finally:
            pgoutput._walk = original
    return results[0], results[1]


@st.composite
def rows(draw: st.DrawFn) -> tuple[bytes, list]:
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=12))
    values = [draw(st.one_of(st.none(), st.just(UNCHANGED), TEXTS.get(t, st.text()))) for t in types]
    announce = relation(3, "public", "t", [(f"c{i}", t, i == 0) for i, t in enumerate(types)], "f")
    return announce, values


@given(rows(), st.data())
def test_the_c_walk_decodes_rows_exactly_as_the_python_walk(row, data) -> None:  # type: ignore[no-untyped-def]
    announce, values = row
    message = data.draw(st.sampled_from([insert(3, values), update(3, values, old=values)]))
    native, python = both(message, announce)
    assert native == python


@given(rows(), st.integers(0, 400), st.binary(max_size=8))
def test_truncated_or_garbled_messages_fail_the_same_either_way(row, cut: int, garbage: bytes) -> None:  # type: ignore[no-untyped-def]
    announce, values = row
    message = insert(3, values)
    for broken in (message[:cut], message[:cut] + garbage + message[cut + len(garbage):]):
        native, python = both(broken, announce)
        assert native == python


def test_binary_values_and_other_encodings_keep_the_python_walk() -> None:
    announce = relation(3, "public", "t", [("a", types.TEXT, True)])
    message = b"I" + struct.pack(">I", 3) + b"N" + struct.pack(">h", 1) + b"b" + struct.pack(">i", 2) + b"\x01\xff"
    native, python = both(message, announce)
    assert native == python and native.new == {"a": "01ff"}  # type: ignore[union-attr]
    latin = Decoder("latin-1")
    latin.decode(announce)
    assert latin.decode(insert(3, ["é"])).new == {"a": "Ã©"}


JAVA_MURMUR2 = {  # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed 32-bit)
    b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("murmur2", [native_murmur2, partitioner.murmur2], ids=["c", "python"])
def test_murmur2_gives_the_java_client_s_values(murmur2) -> None:  # type: ignore[no-untyped-def]
    for key, signed in JAVA_MURMUR2.items():
        assert murmur2(key) == signed & 0xFFFFFFFF


@given(st.binary(max_size=300))
def test_both_murmur2_agree_with_aiokafka_s(key: bytes) -> None:
    assert native_murmur2(key) == partitioner.murmur2(key) == aiokafka_murmur2(key)
