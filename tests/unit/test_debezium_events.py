"""A stock Debezium PostgreSQL connector's records, as the worker reads them (`consumers.incoming`): every change
becomes a notice keyed by its row, with or without embedded schemas; what is not a change is told apart; the
sync's own writes are recognised by their replication origin. Real records: tests/fixtures/debezium."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc.catalog import Column, Table
from cdc.mapping.load import load_mapping_file
from cdc.settings import DEFAULT_MAPPING_FILE
from consumers.incoming import Echo, Poison, decode, interpret
from schemas import key_text
from schemas.change_event import ChangeEvent, Decoded, NotAChange
from tests.unit.debezium_records import names, record

MAPPINGS = load_mapping_file(DEFAULT_MAPPING_FILE)
TABLES = {
    "customer": Table("customer", "public", {
        "no": Column("no", "varchar", 20), "name": Column("name", "varchar", 100),
        "credit_limit": Column("credit_limit", "numeric", scale=2),
        "modified_at": Column("modified_at", "timestamptz")}, ["no"]),
    "currency": Table("currency", "public", {
        "code": Column("code", "varchar", 10), "exchange_rate": Column("exchange_rate", "numeric", scale=6)},
        ["code"]),
}
ORIGINS = "cdc_applier"
SCHEMAS = pytest.mark.parametrize("schemas", [True, False], ids=["schemas", "no-schemas"])


def notices(name: str, schemas: bool) -> list | Poison | Echo:
    decoded = decode(record(name, schemas=schemas).value)
    assert isinstance(decoded, Decoded), decoded
    table = decoded.event.source.table
    return interpret(decoded, "erp", TABLES, MAPPINGS.for_table("erp", table), origin_prefix=ORIGINS)


@SCHEMAS
@pytest.mark.parametrize(("name", "op", "key"), [
    ("customer-r", "r", "C00001"), ("customer-u", "u", "C00001"), ("customer-c", "c", "C00002"),
    ("customer-d", "d", "C00002"), ("currency-r", "r", "EUR"), ("currency-u", "u", "EUR"),
])
def test_every_change_with_default_settings_is_a_notice_of_its_key(name: str, op: str, key: str,
                                                                   schemas: bool) -> None:
    found = notices(name, schemas)
    assert isinstance(found, list) and len(found) == 1, found
    mapping, change = found[0]
    assert (mapping.name, change.source, change.op, change.key) == (
        "CURRENCY" if name.startswith("currency") else "CUSTOMER", "erp", op, key)
    # only the key is read: base64 numerics, the delete's placeholder image, times are never typed
    assert change.row == {TABLES[mapping.erp.table].primary_key[0]: key}
    assert change.position > 0 and not change.replay


@SCHEMAS
def test_the_syncs_own_write_is_recognised_by_its_origin(schemas: bool) -> None:
    found = notices("customer-u-echo", schemas)
    assert found == Echo("erp", "customer", "C00001", "cdc_applier_golden")
    decoded = decode(record("customer-u-echo", schemas=schemas).value)
    assert isinstance(decoded, Decoded)
    other = interpret(decoded, "erp", TABLES, MAPPINGS.for_table("erp", "customer"), origin_prefix="someone_else")
    assert isinstance(other, list) and other[0][1].key == "C00001"  # another origin's change is a change


@SCHEMAS
@pytest.mark.parametrize(("name", "kind"), [
    ("customer-tombstone", "tombstone"), ("heartbeat", "heartbeat"), ("transaction-begin", "transaction"),
    ("transaction-end", "transaction"), ("message", "message"),
])
def test_records_that_change_no_row_are_told_apart(name: str, kind: str, schemas: bool) -> None:
    decoded = decode(record(name, schemas=schemas).value)
    assert isinstance(decoded, NotAChange) and decoded.kind == kind


def test_a_truncate_is_not_a_change_and_names_its_table() -> None:
    value = record("customer-u", schemas=False).value
    assert value is not None
    truncate = value.replace(b'"op":"u"', b'"op":"t"')
    assert decode(truncate) == NotAChange("truncate", "customer")


def test_every_fixture_record_is_read_without_poison() -> None:
    for name in names():
        for schemas in (True, False):
            decoded = decode(record(name, schemas=schemas).value)
            assert not isinstance(decoded, Poison), (name, schemas, decoded)


def test_poison_only_when_the_key_cannot_be_read() -> None:
    value = record("customer-u", schemas=False).value
    assert value is not None
    no_key = decode(value.replace(b'"no":"C00001"', b'"no":null'))
    assert isinstance(no_key, Decoded)
    found = interpret(no_key, "erp", TABLES, MAPPINGS.for_table("erp", "customer"), origin_prefix=ORIGINS)
    assert isinstance(found, Poison) and "key column 'no'" in found.reason
    unknown_op = decode(value.replace(b'"op":"u"', b'"op":"x"'))
    assert isinstance(unknown_op, Poison) and "op" in unknown_op.reason


def test_a_numeric_key_is_read_by_its_schema_or_by_the_columns_scale() -> None:
    table = {"ledger": Table("ledger", "public", {"id": Column("id", "numeric", scale=2)}, ["id"])}
    decimal = {"type": "bytes", "optional": False, "name": "org.apache.kafka.connect.data.Decimal",
               "parameters": {"scale": "2"}, "field": "id"}
    payload = {"op": "c", "after": {"id": "B6Eg"}, "source": {"table": "ledger", "lsn": 1}}
    event = ChangeEvent.model_validate(payload)
    for decoded in (Decoded(event, payload, {"id": decimal}), Decoded(event, payload)):
        found = interpret(decoded, "erp", table, [MAPPINGS.get("CUSTOMER")], origin_prefix=ORIGINS)
        assert isinstance(found, list) and found[0][1].key == "5000"


PRICE_LINE = {"price_line": Table("price_line", "public", {
    "item_no": Column("item_no", "varchar", 20), "currency": Column("currency", "varchar", 3),
    "min_quantity": Column("min_quantity", "numeric", scale=3),
    "unit_price": Column("unit_price", "numeric", scale=2)}, ["item_no", "currency", "min_quantity"])}
PRICE_MAPPINGS = load_mapping_file(Path(__file__).resolve().parents[2] / "examples" / "pricing" / "mappings.yaml")


@pytest.mark.parametrize("schemas", [True, False], ids=["schemas", "no-schemas"])
def test_a_composite_key_is_read_column_by_column_as_capture_names_the_record(schemas: bool) -> None:
    """A price line keyed by item, currency and a numeric(18,3) minimum quantity, as Debezium 3.6 writes it by
    default (the decimal as base64 unscaled bytes with its schema; as a string without one): the key text is the
    one `cdc capture` gives the same row, whatever the columns' order in the image."""
    decimal = {"type": "bytes", "optional": False, "name": "org.apache.kafka.connect.data.Decimal",
               "parameters": {"scale": "3", "connect.decimal.precision": "18"}, "field": "min_quantity"}
    quantity = "JxA=" if schemas else "10.000"  # 10000 unscaled: 10.000
    after = {"unit_price": "AQ==" if schemas else "0.01", "min_quantity": quantity, "currency": "EUR",
             "item_no": "1000"}
    payload = {"op": "u", "before": None, "after": after, "source": {"table": "price_line", "lsn": 7}}
    columns = {"min_quantity": decimal} if schemas else {}
    decoded = Decoded(ChangeEvent.model_validate(payload), payload, columns)
    found = interpret(decoded, "erp", PRICE_LINE, PRICE_MAPPINGS.for_table("erp", "price_line"),
                      origin_prefix=ORIGINS)
    assert isinstance(found, list) and len(found) == 1, found
    change = found[0][1]
    assert change.key == key_text.encode(["1000", "EUR", "10"]) == '["1000","EUR","10"]'
    assert set(change.row) == {"item_no", "currency", "min_quantity"}  # the price is never typed


def test_a_composite_key_missing_one_column_is_poison_naming_it() -> None:
    payload = {"op": "c", "after": {"item_no": "1000", "currency": "EUR"}, "source": {"table": "price_line"}}
    decoded = Decoded(ChangeEvent.model_validate(payload), payload)
    found = interpret(decoded, "erp", PRICE_LINE, PRICE_MAPPINGS.for_table("erp", "price_line"),
                      origin_prefix=ORIGINS)
    assert isinstance(found, Poison) and "'min_quantity'" in found.reason
