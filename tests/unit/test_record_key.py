"""Our keys written the way a topic's producer writes its own, so a row's records share one partition: learnt
from real Debezium keys (tests/fixtures/debezium), byte for byte."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cdc.topics.partitioner import partition_for
from schemas.change_event import encode_key
from schemas.record_key import PLAIN, KeyFormat
from tests.unit.debezium_records import record


def test_a_key_with_an_embedded_schema_is_written_as_debezium_writes_it() -> None:
    first, second = record("customer-r"), record("customer-c")  # C00001 and C00002, keys with their schema
    assert first.key is not None and second.key is not None
    learnt = KeyFormat.learn(first.key)
    assert not learnt.plain and list(learnt.fields) == ["no"]
    assert learnt.encode({"no": "C00001"}) == first.key
    assert learnt.encode({"no": "C00002"}) == second.key
    assert partition_for(learnt.encode({"no": "C00002"}), 6) == second.partition
    # what the plain key would have done: another partition for the same row
    assert partition_for(encode_key({"no": "C00002"}), 6) != second.partition


def test_integer_keys_and_keys_without_a_schema() -> None:
    numbered = record("types_demo-c")
    assert numbered.key is not None
    assert KeyFormat.learn(numbered.key).encode({"id": 1}) == numbered.key
    plain = record("customer-r", schemas=False)
    assert KeyFormat.learn(plain.key) == PLAIN
    assert PLAIN.encode({"no": "C00001"}) == plain.key == b'{"no":"C00001"}'


def test_a_key_of_other_columns_or_unknown_spacing_falls_back_to_plain() -> None:
    key = record("customer-r").key
    assert key is not None
    learnt = KeyFormat.learn(key)
    assert learnt.encode({"code": "EUR"}) == b'{"code":"EUR"}'
    spaced = json.dumps(json.loads(key)).encode()  # another serializer: cannot be reproduced byte for byte
    assert KeyFormat.learn(spaced) == PLAIN
    assert KeyFormat.learn(b"not json") == PLAIN and KeyFormat.learn(None) == PLAIN


def test_a_decimal_key_is_encoded_by_its_schema() -> None:
    schema = {"type": "struct", "fields": [{"type": "bytes", "optional": False,
                                            "name": "org.apache.kafka.connect.data.Decimal",
                                            "parameters": {"scale": "2"}, "field": "id"}],
              "optional": False, "name": "x.public.ledger.Key"}
    sample = json.dumps({"schema": schema, "payload": {"id": "AA=="}}, separators=(",", ":")).encode()
    learnt = KeyFormat.learn(sample)
    assert learnt.encode({"id": "5000"}) == sample.replace(b"AA==", b"B6Eg")


@given(st.text(min_size=1, max_size=40).filter(lambda s: all(ord(c) >= 0x20 for c in s)))
def test_text_keys_are_the_producers_bytes(text: str) -> None:
    key = record("customer-r").key
    assert key is not None
    theirs = key.replace(b'"C00001"', json.dumps(text, ensure_ascii=False).encode())
    assert KeyFormat.learn(key).encode({"no": text}) == theirs


def test_a_composite_key_is_written_in_the_producers_field_order() -> None:
    """A key of several columns, as Debezium writes one (fields in the table's primary-key order, the decimal by
    its schema): encoded from the columns in any order, it is the producer's bytes, so it hashes to the partition
    of that row's own records."""
    schema = {"type": "struct", "fields": [
        {"type": "string", "optional": False, "field": "item_no"},
        {"type": "string", "optional": False, "field": "currency"},
        {"type": "bytes", "optional": False, "name": "org.apache.kafka.connect.data.Decimal",
         "parameters": {"scale": "3", "connect.decimal.precision": "18"}, "field": "min_quantity"}],
        "optional": False, "name": "erp.public.price_line.Key"}
    theirs = json.dumps({"schema": schema, "payload": {"item_no": "1000", "currency": "EUR", "min_quantity": "JxA="}},
                        separators=(",", ":")).encode()
    learnt = KeyFormat.learn(theirs)
    assert list(learnt.fields) == ["item_no", "currency", "min_quantity"]
    ours = learnt.encode({"min_quantity": "10.000", "currency": "EUR", "item_no": "1000"})
    assert ours == theirs
    assert partition_for(ours, 6) == partition_for(theirs, 6)
    assert learnt.encode({"item_no": "1000", "currency": "EUR"}) == PLAIN.encode({"item_no": "1000", "currency": "EUR"})
