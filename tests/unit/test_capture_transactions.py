"""The assembler: which pgoutput rows become events, which are dropped, and where the slot may advance."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cdc.capture.events import EventEncoder
from cdc.capture.pgoutput import Column, Relation
from cdc.capture.transactions import Assembler, Boundary, Publish, Truncated
from cdc.values import vocabulary as types
from schemas.change_event import ChangeEvent, encode_key
from tests.unit.pgoutput_messages import begin, commit, delete, insert, message, origin, relation, truncate, update

TS = 1_704_164_645_123_456
COLUMNS = [("no", types.VARCHAR, True), ("name", types.VARCHAR, True), ("credit", types.NUMERIC, True)]


def assembler(keys: dict | None = None) -> Assembler:
    return Assembler(
        encoder=EventEncoder("erp", "cdc.erp", "erp", clock=lambda: 1.0),
        topic=lambda table: f"cdc.erp.{table}",
        keys={("public", "customer"): ("no",)} if keys is None else keys,
        origin_prefix="cdc_applier",
    )


def feed(a: Assembler, rows: list[tuple[int, bytes]]) -> list:
    return [out for lsn, data in rows if (out := a.feed(lsn, data)) is not None]


def test_transaction_becomes_events_then_a_boundary_at_its_end_lsn() -> None:
    a = assembler()
    out = feed(a, [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "Anne", "10.50"])),
        (120, update(1, ["C1", "Anna", "10.50"], old=["C1", "Anne", "10.50"])),
        (140, delete(1, ["C1", "Anna", "10.50"])),
        (210, commit(200, 210, TS)),
    ])
    assert [type(o) for o in out] == [Publish, Publish, Publish, Boundary]
    assert out[-1] == Boundary(lsn=210, commit_ts=TS, events=3, origin=None)
    events = [ChangeEvent.from_wire(o.value) for o in out[:3]]
    assert [e.op for e in events] == ["c", "u", "d"]
    assert {o.topic for o in out[:3]} == {"cdc.erp.customer"}
    assert {o.key for o in out[:3]} == {b'{"no":"C1"}'}
    assert events[1].before == {"no": "C1", "name": "Anne", "credit": "10.50"}
    assert events[1].after["name"] == "Anna"
    assert events[2].before["name"] == "Anna" and events[2].after is None
    assert [e.source.lsn for e in events] == [100, 120, 140]
    assert {e.source.commit_lsn for e in events} == {200}
    assert {e.source.ts_ms for e in events} == {TS // 1000}
    assert {e.source.txId for e in events} == {9}
    assert [e.transaction["total_order"] for e in events] == [1, 2, 3]


def test_rows_of_one_wal_record_get_distinct_event_ids() -> None:
    a = assembler()
    out = feed(a, [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])),
        (100, insert(1, ["C2", "b", "2"])),
        (150, insert(1, ["C3", "c", "3"])),
        (210, commit(200, 210, TS)),
    ])
    ids = [json.loads(o.value)["event_id"] for o in out[:3]]
    assert ids == ["erp:200:100:0", "erp:200:100:1", "erp:200:150:0"]
    # re-decoding the same rows (a re-peek after a crash) yields the same ids
    again = [json.loads(o.value)["event_id"] for o in feed(assembler(), [
        (100, begin(200, TS, 9)), (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])), (100, insert(1, ["C2", "b", "2"])), (150, insert(1, ["C3", "c", "3"])),
    ])]
    assert again == ids


def test_transactions_of_our_appliers_are_dropped_but_still_advance_the_slot() -> None:
    a = assembler()
    out = feed(a, [
        (100, begin(200, TS, 9)),
        (100, origin(5, "cdc_applier_crm_1")),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])),
        (110, truncate([1])),
        (210, commit(200, 210, TS)),
        (300, begin(400, TS, 10)),
        (300, insert(1, ["C2", "b", "2"])),
        (410, commit(400, 410, TS)),
    ])
    assert out[0] == Boundary(lsn=210, commit_ts=TS, events=0, origin="cdc_applier_crm_1")
    assert isinstance(out[1], Publish) and json.loads(out[1].value)["after"]["no"] == "C2"
    assert out[2] == Boundary(lsn=410, commit_ts=TS, events=1)


def test_changes_of_our_appliers_transactions_are_not_even_decoded() -> None:
    a = assembler()
    out = feed(a, [
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, begin(200, TS, 9)),
        (100, origin(5, "cdc_applier_crm_1")),
        (100, b"I\x00\x00\x00\x01N\x00\x03t"),  # truncated: decoding it would fail
        (210, commit(200, 210, TS)),
    ])
    assert out == [Boundary(lsn=210, commit_ts=TS, events=0, origin="cdc_applier_crm_1")]


def test_foreign_origins_are_published() -> None:
    out = feed(assembler(), [
        (100, begin(200, TS, 9)),
        (100, origin(5, "someone_else")),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])),
        (210, commit(200, 210, TS)),
    ])
    assert isinstance(out[0], Publish)


def test_heartbeats_and_standalone_messages_are_boundaries_not_events() -> None:
    out = feed(assembler(), [
        (500, message("cdc-heartbeat", b"2024-01-02 03:04:05+00", 500)),
        (100, begin(600, TS, 9)),
        (100, message("app", b"inside", 550, transactional=True)),
        (610, commit(600, 610, TS)),
    ])
    assert out == [Boundary(lsn=500, message_prefix="cdc-heartbeat"), Boundary(lsn=610, commit_ts=TS, events=0)]


def test_truncate_is_reported_not_published() -> None:
    out = feed(assembler(), [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (110, truncate([1])),
        (210, commit(200, 210, TS)),
    ])
    assert out == [Truncated((("public", "customer"),), 110), Boundary(lsn=210, commit_ts=TS, events=0)]


def test_key_is_the_primary_key_from_the_catalog_not_the_full_replica_identity() -> None:
    out = feed(assembler(keys={("public", "customer"): ("no", "name")}), [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])),
        (101, relation(2, "public", "unchecked", [("id", types.INT4, True), ("x", types.TEXT, False)], "d")),
        (102, insert(2, ["7", "y"])),
    ])
    assert out[0].key == b'{"no":"C1","name":"a"}'
    assert out[1].key == b'{"id":7}' and out[1].topic == "cdc.erp.unchecked"


def test_update_changing_the_key_is_keyed_by_the_new_key_with_the_old_row_as_before() -> None:
    out = feed(assembler(), [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, update(1, ["C2", "a", "1"], old=["C1", "a", "1"])),
    ])
    assert out[0].key == b'{"no":"C2"}'
    assert json.loads(out[0].value)["before"]["no"] == "C1"


def test_what_ended_before_published_upto_is_passed_over() -> None:
    rows = [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", "a", "1"])),
        (210, commit(200, 210, TS)),
        (250, message("cdc-heartbeat", b"now", 250)),
        (300, begin(400, TS, 10)),
        (300, insert(1, ["C2", "b", "2"])),
        (410, commit(400, 410, TS)),
    ]
    a = assembler()
    a.published_upto = 250  # the first transaction and the heartbeat were published by an earlier peek
    out = feed(a, rows)
    assert out[0] == Boundary(lsn=210, commit_ts=TS, events=0, published_before=True)
    assert out[1] == Boundary(lsn=250, message_prefix="cdc-heartbeat", published_before=True)
    assert isinstance(out[2], Publish) and json.loads(out[2].value)["after"]["no"] == "C2"
    assert out[3] == Boundary(lsn=410, commit_ts=TS, events=1)
    # the relation announced inside the transaction passed over is still known
    assert json.loads(out[2].value)["source"]["table"] == "customer"


def test_an_event_too_large_for_the_broker_is_published_with_its_key_only() -> None:
    """Else the broker refuses it for ever and capture stalls; the worker reads the current row anyway."""
    a = Assembler(encoder=EventEncoder("erp", "cdc.erp", "erp", clock=lambda: 1.0),
                  topic=lambda table: f"cdc.erp.{table}", keys={("public", "customer"): ("no",)},
                  origin_prefix="cdc_applier", max_event_bytes=2_000)
    big = "x" * 5_000
    out = feed(a, [
        (100, begin(200, TS, 9)),
        (100, relation(1, "public", "customer", COLUMNS)),
        (100, insert(1, ["C1", big, "10.50"])),
        (120, update(1, ["C2", "small", "1"])),
        (210, commit(200, 210, TS)),
    ])
    events = [ChangeEvent.from_wire(o.value) for o in out[:2]]
    assert len(out[0].value) < 2_000 and events[0].after == {"no": "C1"} and events[0].op == "c"
    assert out[0].key == b'{"no":"C1"}'
    assert events[1].after == {"no": "C2", "name": "small", "credit": "1"}


@given(st.text(min_size=1, max_size=20), st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.text()))
def test_a_one_column_key_is_exactly_the_json_object_of_that_column(column: str, value: object) -> None:
    """The one-column fast path writes what `encode_key({column: value})` writes, byte for byte (partitions
    depend on these bytes)."""
    a = Assembler(encoder=EventEncoder("erp", "cdc.erp", "erp", clock=lambda: 1.0), topic=lambda t: f"cdc.erp.{t}",
                  keys={("public", "t"): (column,)}, origin_prefix="cdc_applier")
    relation_id = 7
    a.decoder.relations[relation_id] = Relation(relation_id, "public", "t", "f", (Column(column, types.TEXT),),
                                                (column,), (None,), ((column, None),))
    a.feed(100, begin(200, TS, 9))
    out = a._change("c", a.decoder.relations[relation_id], None, {column: value}, 100)
    assert out is not None and out.key == encode_key({column: value})
