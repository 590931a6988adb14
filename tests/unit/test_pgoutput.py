"""The pgoutput decoder, fed hand-built protocol v1 messages."""

from __future__ import annotations

import struct

import pytest

from cdc.capture.pgoutput import (
    Begin,
    Commit,
    Decoder,
    Delete,
    Insert,
    Message,
    Origin,
    PgOutputError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
)
from cdc.values import reading
from cdc.values import vocabulary as types
from tests.unit.pgoutput_messages import (
    UNCHANGED,
    begin,
    commit,
    delete,
    insert,
    message,
    origin,
    relation,
    truncate,
    type_message,
    update,
)

ALL_TYPES = [
    ("id", types.INT4, True), ("small", types.INT2, False), ("big", types.INT8, False),
    ("amount", types.NUMERIC, False), ("ratio", types.FLOAT8, False), ("ratio4", types.FLOAT4, False),
    ("flag", types.BOOL, False), ("day", types.DATE, False), ("at", types.TIMESTAMP, False),
    ("at_tz", types.TIMESTAMPTZ, False), ("clock", types.TIME, False), ("uid", types.UUID, False),
    ("doc", types.JSONB, False), ("doc_json", types.JSON, False), ("name", types.VARCHAR, False),
    ("note", types.TEXT, False), ("tags", 1009, False),
]


@pytest.fixture
def decoder() -> Decoder:
    d = Decoder()
    d.decode(relation(16384, "public", "thing", ALL_TYPES))
    return d


# ---------------------------------------------------------------- tests


def test_begin_and_commit_carry_positions_and_unix_time() -> None:
    d = Decoder()
    ts = 1_704_164_645_123_456  # 2024-01-02T03:04:05.123456Z
    b = d.decode(begin(0x16B3748, ts, 771))
    assert b == Begin(final_lsn=0x16B3748, commit_ts=ts, xid=771)
    c = d.decode(commit(0x16B3748, 0x16B3780, ts))
    assert c == Commit(flags=0, commit_lsn=0x16B3748, end_lsn=0x16B3780, commit_ts=ts)


def test_origin_names_the_origin() -> None:
    assert Decoder().decode(origin(42, "cdc_applier_erp")) == Origin(42, "cdc_applier_erp")


def test_relation_is_cached_with_columns_and_identity(decoder: Decoder) -> None:
    rel = decoder.relations[16384]
    assert (rel.schema, rel.table, rel.replica_identity) == ("public", "thing", "f")
    assert rel.names[:3] == ("id", "small", "big")
    assert rel.columns[0].in_identity and not rel.columns[1].in_identity
    assert rel.columns[0].type_oid == types.INT4


def test_relation_in_pg_catalog_has_empty_namespace() -> None:
    rel = Decoder().decode(relation(1, "", "pg_thing", [("a", types.TEXT, True)]))
    assert isinstance(rel, Relation) and rel.schema == "pg_catalog"


def test_insert_converts_values_by_type(decoder: Decoder) -> None:
    msg = decoder.decode(insert(16384, [
        "7", "-3", "9007199254740993", "12345678901234567890.000001", "0.1", "1.5",
        "t", "2024-01-02", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456+00", "23:59:59.5",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", '{"a": [1, 2.5, "ü"]}', '{"b": null}', "Zoë 😀",
        "line\nbreak", "{1,2}",
    ]))
    assert isinstance(msg, Insert)
    assert msg.relation.table == "thing"
    assert msg.new == {
        "id": 7, "small": -3, "big": 9007199254740993, "amount": "12345678901234567890.000001",
        "ratio": 0.1, "ratio4": 1.5, "flag": True, "day": "2024-01-02", "at": "2024-01-02T03:04:05.123456",
        "at_tz": "2024-01-02T03:04:05.123456+00:00", "clock": "23:59:59.5",
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "doc": {"a": [1, 2.5, "ü"]}, "doc_json": {"b": None},
        "name": "Zoë 😀", "note": "line\nbreak", "tags": "{1,2}",
    }
    assert type(msg.new["big"]) is int


def test_nulls_and_special_values(decoder: Decoder) -> None:
    msg = decoder.decode(insert(16384, [
        "1", None, None, "NaN", "NaN", "-Infinity", "f", "infinity", "-infinity", "2024-01-02 03:04:05+05:30",
        None, None, "null", None, "", "", None,
    ]))
    assert isinstance(msg, Insert)
    assert msg.new["small"] is None and msg.new["big"] is None
    assert msg.new["amount"] == "NaN"
    assert msg.new["ratio"] == "NaN" and msg.new["ratio4"] == "-Infinity"
    assert msg.new["flag"] is False
    assert msg.new["day"] == "infinity" and msg.new["at"] == "-infinity"
    assert msg.new["at_tz"] == "2024-01-02T03:04:05+05:30"
    assert msg.new["doc"] is None and msg.new["name"] == ""


@pytest.mark.parametrize(("text", "iso"), [
    ("2024-01-02 03:04:05+00", "2024-01-02T03:04:05+00:00"),
    ("2024-01-02 03:04:05.5-08", "2024-01-02T03:04:05.5-08:00"),
    ("1850-01-01 00:00:00+00:53:28", "1850-01-01T00:00:00+00:53:28"),
    ("infinity", "infinity"),
    ("0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"),
    ("12024-01-02 03:04:05+00", "12024-01-02T03:04:05+00:00"),
])
def test_timestamptz_text_becomes_iso_with_offset(text: str, iso: str) -> None:
    assert reading.as_timestamptz(text) == iso


def test_timetz_offset_is_normalised() -> None:
    assert reading.converter(types.TIMETZ)("03:04:05+02") == "03:04:05+02:00"


def test_update_with_old_row_and_unchanged_toast_filled_from_old() -> None:
    d = Decoder()
    d.decode(relation(5, "public", "doc", [("id", types.INT4, True), ("body", types.TEXT, True),
                                           ("n", types.INT4, True)]))
    msg = d.decode(update(5, ["1", UNCHANGED, "3"], old=["1", "long text", "2"]))
    assert isinstance(msg, Update)
    assert msg.old_kind == "O"
    assert msg.old == {"id": 1, "body": "long text", "n": 2}
    assert msg.new == {"id": 1, "body": "long text", "n": 3}
    assert msg.unchanged == frozenset()


def test_update_without_old_row_leaves_unchanged_toast_out() -> None:
    d = Decoder()
    d.decode(relation(5, "public", "doc", [("id", types.INT4, True), ("body", types.TEXT, False)], "d"))
    msg = d.decode(update(5, ["1", UNCHANGED]))
    assert isinstance(msg, Update)
    assert msg.old is None and msg.old_kind is None
    assert msg.new == {"id": 1}
    assert msg.unchanged == frozenset({"body"})


def test_update_with_key_tuple_keeps_only_identity_columns() -> None:
    d = Decoder()
    d.decode(relation(5, "public", "doc", [("id", types.INT4, True), ("body", types.TEXT, False)], "d"))
    msg = d.decode(update(5, ["2", "x"], old=["1", None], kind=b"K"))
    assert isinstance(msg, Update)
    assert msg.old_kind == "K" and msg.old == {"id": 1}
    assert msg.new == {"id": 2, "body": "x"}


def test_delete_with_old_row_and_with_key(decoder: Decoder) -> None:
    d = Decoder()
    d.decode(relation(5, "public", "doc", [("id", types.INT4, True), ("body", types.TEXT, False)], "d"))
    msg = d.decode(delete(5, ["1", None], kind=b"K"))
    assert msg == Delete(d.relations[5], {"id": 1}, "K")
    d.decode(relation(6, "public", "full", [("id", types.INT4, True), ("body", types.TEXT, True)], "f"))
    msg = d.decode(delete(6, ["1", "x"]))
    assert isinstance(msg, Delete) and msg.old == {"id": 1, "body": "x"} and msg.old_kind == "O"


def test_truncate_names_cached_relations(decoder: Decoder) -> None:
    decoder.decode(relation(16385, "crm", "other", [("id", types.INT4, True)]))
    msg = decoder.decode(truncate([16384, 16385], options=1))
    assert isinstance(msg, Truncate)
    assert [(r.schema, r.table) for r in msg.relations] == [("public", "thing"), ("crm", "other")]
    assert msg.cascade and not msg.restart_identity


def test_logical_message() -> None:
    msg = Decoder().decode(message("cdc-heartbeat", b"2024-01-02 03:04:05+00", 0x100))
    assert msg == Message(False, 0x100, "cdc-heartbeat", b"2024-01-02 03:04:05+00")
    assert Decoder().decode(message("x", b"", 1, transactional=True)).transactional


def test_type_message_is_cached() -> None:
    d = Decoder()
    assert d.decode(type_message(70000, "public", "mood")) == TypeInfo(70000, "public", "mood")
    assert d.types[70000].name == "mood"


def test_unknown_type_oid_is_text() -> None:
    d = Decoder()
    d.decode(relation(9, "public", "e", [("mood", 70000, False), ("money", 790, False)]))
    assert d.decode(insert(9, ["happy", "$1.00"])).new == {"mood": "happy", "money": "$1.00"}


def test_relation_message_replaces_cached_relation() -> None:
    d = Decoder()
    d.decode(relation(9, "public", "t", [("a", types.INT4, True)]))
    d.decode(relation(9, "public", "t", [("a", types.INT4, True), ("b", types.TEXT, False)]))
    assert d.decode(insert(9, ["1", "x"])).new == {"a": 1, "b": "x"}


@pytest.mark.parametrize(("data", "fragment"), [
    (b"", "empty"),
    (b"Z123", "unknown pgoutput message type"),
    (insert(99, ["1"]), "before its Relation"),
    (b"B\x00\x01", "malformed"),
    (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 50) + b"abc",
     "past the end"),
    (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"x", "unknown tuple value kind"),
])
def test_malformed_messages_raise(data: bytes, fragment: str) -> None:
    d = Decoder()
    d.decode(relation(1, "public", "t", [("a", types.TEXT, True)]))
    with pytest.raises(PgOutputError, match=fragment):
        d.decode(data)


def test_more_tuple_columns_than_relation_columns_is_an_error() -> None:
    d = Decoder()
    d.decode(relation(1, "public", "t", [("a", types.TEXT, True)]))
    with pytest.raises(PgOutputError, match="known columns"):
        d.decode(insert(1, ["x", "y"]))
