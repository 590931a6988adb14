"""Golden payloads: the events capture writes, and Debezium PostgreSQL connector events, read by `from_wire`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.capture.events import EventEncoder, Transaction, event_id, exact_json, image_encoder
from cdc.values import vocabulary as types
from schemas.change_event import ChangeEvent, EventDecodeError, decode_key, encode_key

TXN = Transaction(commit_lsn=23_950_184, commit_ts_ms=1_704_164_645_123, xid=771)


def ours(op: str, before: dict | None, after: dict | None, lsn: int = 23_950_000, seq: int = 0) -> bytes:
    encoder = EventEncoder("erp", "cdc.erp", "erp", clock=lambda: 1_704_164_646.5)
    return encoder.encode(op, "public", "customer", before, after, TXN, lsn, seq, 3, 2)


ROW = {"no": "C0001", "name": "Zoë 😀 Ünïcode", "credit_limit": "1234.50", "blocked": "",
       "modified_at": "2024-01-02T03:04:05.123456+00:00", "salesperson_code": None}


def test_our_create_event_golden_bytes() -> None:
    wire = ours("c", None, ROW)
    assert json.loads(wire) == {
        "op": "c",
        "before": None,
        "after": ROW,
        "source": {
            "version": "1", "connector": "cdc-sync", "name": "cdc.erp", "db": "erp", "schema": "public",
            "table": "customer", "ts_ms": 1_704_164_645_123, "snapshot": "false", "txId": 771,
            "lsn": 23_950_000, "commit_lsn": 23_950_184, "sequence": '["23950184","23950000"]',
        },
        "ts_ms": 1_704_164_646_500,
        "transaction": {"id": "771:23950184", "total_order": 3, "data_collection_order": 2},
        "event_id": "erp:23950184:23950000:0",
        "system": "erp",
        "replay": None,
        "schema_version": 1,
    }
    assert "Zoë 😀".encode() in wire  # UTF-8, not \u escapes


def test_our_events_parse_and_round_trip() -> None:
    for op, before, after in [("c", None, ROW), ("u", {**ROW, "name": "old"}, ROW), ("d", ROW, None)]:
        event = ChangeEvent.from_wire(ours(op, before, after))
        assert event is not None
        assert event.op == op and event.before == before and event.after == after
        assert event.system == "erp"
        assert event.source.table == "customer" and event.source.schema_ == "public"
        assert not event.source.is_snapshot
        assert event.position == (23_950_184, 23_950_000)
        assert event.stable_id() == "erp:23950184:23950000:0"
        assert event.row == (before if op == "d" else after)
        assert json.loads(event.to_wire()) == json.loads(ours(op, before, after))


def test_event_ids_are_deterministic_and_distinguish_rows_of_one_wal_record() -> None:
    assert event_id("crm", 10, 5, 0) == event_id("crm", 10, 5, 0)
    assert len({event_id("crm", 10, 5, i) for i in range(3)} | {event_id("erp", 10, 5, 0)}) == 4
    first = ChangeEvent.from_wire(ours("c", None, ROW, seq=0))
    second = ChangeEvent.from_wire(ours("c", None, ROW, seq=1))
    assert first is not None and second is not None and first.event_id != second.event_id


def test_keys_are_json_objects() -> None:
    raw = encode_key({"no": "C0001"})
    assert raw == b'{"no":"C0001"}'
    assert decode_key(raw) == {"no": "C0001"}


# ---------------------------------------------------------------- Debezium's documented PostgreSQL events

DEBEZIUM_CREATE = {
    "before": None,
    "after": {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
    "source": {
        "version": "2.5.4.Final", "connector": "postgresql", "name": "PostgreSQL_server", "ts_ms": 1559033904863,
        "snapshot": True, "db": "postgres", "sequence": '["24023119","24023128"]', "schema": "public",
        "table": "customers", "txId": 555, "lsn": 24023128, "xmin": None,
    },
    "op": "c",
    "ts_ms": 1559033904863,
}

DEBEZIUM_UPDATE = {
    "before": {"id": 1},
    "after": {"id": 1, "first_name": "Anne Marie", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
    "source": {
        "version": "2.5.4.Final", "connector": "postgresql", "name": "PostgreSQL_server", "ts_ms": 1559033904863,
        "snapshot": "false", "db": "postgres", "schema": "public", "table": "customers", "txId": 556,
        "lsn": 24023128, "xmin": None,
    },
    "op": "u",
    "ts_ms": 1465584025523,
}

DEBEZIUM_DELETE = {
    "before": {"id": 1},
    "after": None,
    "source": {
        "version": "2.5.4.Final", "connector": "postgresql", "name": "PostgreSQL_server", "ts_ms": 1559033904863,
        "snapshot": "false", "db": "postgres", "schema": "public", "table": "customers", "txId": 556,
        "lsn": 46523128, "xmin": None,
    },
    "op": "d",
    "ts_ms": 1465581902461,
}

ENVELOPE_SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"},
                                      {"type": "string", "optional": False, "field": "first_name"}],
         "optional": True, "name": "PostgreSQL_server.inventory.customers.Value", "field": "before"},
        {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"}],
         "optional": True, "name": "PostgreSQL_server.inventory.customers.Value", "field": "after"},
        {"type": "string", "optional": False, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"},
    ],
    "optional": False,
    "name": "PostgreSQL_server.inventory.customers.Envelope",
}


@pytest.mark.parametrize("with_schema", [False, True], ids=["schemas-disabled", "schema+payload"])
def test_debezium_events_parse(with_schema: bool) -> None:
    def wire(payload: dict) -> bytes:
        return json.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload} if with_schema else payload).encode()

    create = ChangeEvent.from_wire(wire(DEBEZIUM_CREATE))
    assert create is not None and create.op == "c" and create.after is not None
    assert create.after["first_name"] == "Anne"
    assert create.source.is_snapshot  # Debezium's boolean form
    assert create.event_id is None and create.system is None
    assert create.stable_id() == "PostgreSQL_server:customers:24023128:24023128"
    assert create.source.model_extra == {"xmin": None}

    update = ChangeEvent.from_wire(wire(DEBEZIUM_UPDATE))
    assert update is not None and update.before == {"id": 1} and update.row["first_name"] == "Anne Marie"
    assert not update.source.is_snapshot

    delete = ChangeEvent.from_wire(wire(DEBEZIUM_DELETE))
    assert delete is not None and delete.op == "d" and delete.row == {"id": 1} and delete.after is None


def test_debezium_key_with_schema_and_tombstones() -> None:
    key = json.dumps({"schema": {"type": "struct", "fields": [{"type": "int32", "field": "id"}]},
                      "payload": {"id": 1}}).encode()
    assert decode_key(key) == {"id": 1}
    assert ChangeEvent.from_wire(None) is None
    assert ChangeEvent.from_wire(json.dumps({"schema": ENVELOPE_SCHEMA, "payload": None}).encode()) is None


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (json.dumps({**DEBEZIUM_CREATE, "after": None}).encode(), "needs an 'after' image"),
    (json.dumps({**DEBEZIUM_DELETE, "before": None}).encode(), "needs a 'before' image"),
    (json.dumps({**DEBEZIUM_CREATE, "op": "x"}).encode(), "op"),
])
def test_poison_messages_are_event_decode_errors(raw: bytes, fragment: str) -> None:
    with pytest.raises(EventDecodeError, match=fragment):
        ChangeEvent.from_wire(raw)


@given(st.dictionaries(st.text(), st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.text())))
def test_row_images_of_tables_without_floats_or_json_are_written_byte_for_byte_as_json_does(row: dict) -> None:
    """orjson writes these images (much faster); consumers and the Debezium path see the same bytes as before."""
    assert image_encoder([types.VARCHAR, types.INT8, types.BOOL, types.TIMESTAMPTZ, 1009])(row) == \
        exact_json(row)


def test_tables_with_floats_or_json_keep_json_s_encoder() -> None:
    for oid in (types.FLOAT4, types.FLOAT8, types.JSON, types.JSONB):
        assert image_encoder([types.INT4, oid]) is exact_json
    assert image_encoder([types.FLOAT8])({"x": 1e-7}) == b'{"x":1e-07}'
