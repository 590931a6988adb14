"""Composite keys without a database: the key text (one text per record, `schemas/key_text.py`), the decisions
that make and read it, the writer's statements, and validation's one-line errors with file:line:col."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.catalog import Column, Table
from cdc.mapping.load import MappingFileError, load_mapping_file, locator, parse_mapping_text
from cdc.mapping.model import MappingFile, MatchField, TableMapping
from cdc.mapping.validate import catalog_problems
from cdc.values import CoercionError, key_text, key_values
from consumers.appliers.writer import TableWrite, _set_statement, _statement
from consumers.decisions.keys import candidate_keys, columns_key
from consumers.decisions.outcome import Write
from consumers.decisions.record import Change, Shapes, Situation, decide
from schemas import key_text as text_of_key
from schemas.change_event import ChangeEvent, notice

# ---------------------------------------------------------------- the key text

texts = st.text(st.characters(exclude_categories=("Cs",)))  # any text a column holds, separators included


@given(st.lists(texts, min_size=1, max_size=5))
def test_a_key_text_reads_back_exactly(parts: list[str]) -> None:
    encoded = text_of_key.encode(parts)
    assert text_of_key.decode(encoded, len(parts)) == tuple(parts)


@given(st.lists(texts, min_size=2, max_size=4), st.lists(texts, min_size=2, max_size=4))
def test_two_keys_share_a_text_only_when_equal(a: list[str], b: list[str]) -> None:
    assert (text_of_key.encode(a) == text_of_key.encode(b)) == (a == b)


@given(texts)
def test_a_single_column_key_is_its_text_as_it_always_was(value: str) -> None:
    assert text_of_key.encode([value]) == value and text_of_key.decode(value, 1) == (value,)


def test_separators_and_quotes_inside_a_column() -> None:
    parts = ['1000, "A"', "EUR", "]", '["x"]', ""]
    encoded = text_of_key.encode(parts)
    assert encoded == '["1000, \\"A\\"","EUR","]","[\\"x\\"]",""]'
    assert text_of_key.decode(encoded, 5) == tuple(parts)


@pytest.mark.parametrize("parts", [["A", None], [None], []])
def test_a_key_column_never_holds_null(parts: list[Any]) -> None:
    with pytest.raises(text_of_key.KeyTextError):
        text_of_key.encode(parts)


@pytest.mark.parametrize(("text", "columns"), [("A", 2), ('["A"]', 2), ('["A","B","C"]', 2), ('["A",1]', 2),
                                               ('["A",null]', 2), ("{}", 2), ("", 3)])
def test_a_text_that_is_no_key_of_that_many_columns_is_refused(text: str, columns: int) -> None:
    with pytest.raises(text_of_key.KeyTextError, match=f"is not a key of {columns} columns"):
        text_of_key.decode(text, columns)


@given(st.text(min_size=1, max_size=10), st.decimals(min_value=-10**15, max_value=10**15, places=3),
       st.dates(), st.uuids())
def test_typed_columns_round_trip_through_their_canonical_texts(item: str, quantity: Decimal, day: dt.date,
                                                                 ident: uuid.UUID) -> None:
    columns, types = ["item", "quantity", "day", "id"], ["text", "numeric", "date", "uuid"]
    try:
        row = {"item": item, "quantity": quantity, "day": day, "id": ident}
        encoded = key_text(row, columns)
        typed = key_values(encoded, columns, types)
    except CoercionError:
        return  # text a column cannot hold (a NUL) is refused, not encoded
    assert typed == row
    assert key_text(typed, columns) == encoded, "one text per key"


def test_numbers_dates_and_uuids_in_their_canonical_form() -> None:
    row = {"item": "1000", "qty": Decimal("10.000"), "day": dt.date(2024, 5, 1),
           "id": uuid.UUID("6F0C6D1E-8A4E-4C55-9D0E-2F7F4C1B7A10")}
    assert key_text(row, ["item", "qty", "day", "id"]) == \
        '["1000","10","2024-05-01","6f0c6d1e-8a4e-4c55-9d0e-2f7f4c1b7a10"]'
    assert key_text({"qty": Decimal("10.000")}, ["qty"]) == "10"
    with pytest.raises(CoercionError):
        key_values('["1000","ten"]', ["item", "qty"], ["text", "numeric"])
    with pytest.raises(CoercionError, match="is not a key of 2 columns"):
        key_values("1000", ["item", "qty"], ["text", "numeric"])


def test_a_notice_carries_every_key_column() -> None:
    event = ChangeEvent.model_validate(notice("erp", "public", "price_line", ("item_no", "currency"),
                                              '["1000","EUR"]', "recheck"))
    assert event.after == {"item_no": "1000", "currency": "EUR"}
    assert ChangeEvent.model_validate(notice("erp", "public", "vendor", ("no",), "V1", "recheck")).after == {
        "no": "V1"}


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Col:
    type_name: str
    max_length: int | None = None


@dataclass(frozen=True)
class Shape:
    columns: dict[str, Col]


ERP = Shape({"item_no": Col("varchar", 20), "currency": Col("varchar", 3), "min_quantity": Col("numeric"),
             "unit_price": Col("numeric"), "modified_at": Col("timestamptz")})
CRM = Shape({"id": Col("uuid"), "productnumber": Col("varchar", 20), "currencycode": Col("varchar", 3),
             "quantity": Col("numeric"), "amount": Col("numeric"), "modifiedon": Col("timestamptz")})
SHAPES = Shapes(ERP, CRM, erp_key_type="varchar", crm_key_type="uuid")


def price(**erp: Any) -> TableMapping:
    spec = {"name": "PRICE", "sync_only_coupled": False,
            "erp": {"table": "price_line", "key": ["item_no", "currency", "min_quantity"],
                    "modified_on": "modified_at", **erp},
            "crm": {"table": "productpricelevel", "key": "id", "modified_on": "modifiedon"},
            "fields": [{"erp": "item_no", "crm": "productnumber"}, {"erp": "min_quantity", "crm": "quantity"},
                       {"erp": "unit_price", "crm": "amount"}]}
    return MappingFile.model_validate({"mappings": [spec]}).get("PRICE")


def crm_item(**values: Any) -> Change:
    row = {"id": uuid.UUID(int=7), "productnumber": "1000", "currencycode": "EUR", "quantity": Decimal("10.000"),
           "amount": Decimal("9.5"), "modifiedon": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), **values}
    return Change("crm", "c", str(row["id"]), row)


def test_a_composite_side_takes_strategy_columns_by_default() -> None:
    side = price(defaults={"currency": "EUR"}).erp
    assert side.key_columns == ("item_no", "currency", "min_quantity") and side.composite
    assert side.new_key.strategy == "columns"
    assert candidate_keys(price(), side, "varchar", 20, "x", {}) == []


def test_a_creation_is_keyed_by_what_it_writes_into_the_key_columns() -> None:
    mapping = price(defaults={"currency": "EUR"})
    decision = decide(mapping, crm_item(), Situation(sync_only_coupled=False), SHAPES)
    assert decision.verdict == "created", decision.reason
    [write] = decision.writes
    assert (write.kind, write.key) == ("insert", '["1000","EUR","10"]')
    assert write.values == {"currency": "EUR", "item_no": "1000", "min_quantity": "10", "unit_price": "9.5"}
    assert decision.partner_key == write.key and decision.coupling.erp_key == write.key


def test_the_key_announced_by_an_interrupted_creation_is_kept() -> None:
    announced = '["1000","EUR","10"]'
    decision = decide(price(defaults={"currency": "EUR"}), crm_item(), Situation(
        sync_only_coupled=False, intent=announced), SHAPES)
    assert decision.writes[0].key == announced


def test_a_key_a_record_holds_fails_the_creation_and_a_missing_column_names_the_key() -> None:
    taken = decide(price(defaults={"currency": "EUR"}), crm_item(), Situation(
        sync_only_coupled=False, taken_keys=frozenset({'["1000","EUR","10"]'})), SHAPES)
    assert (taken.verdict, taken.error) == ("failed", "key taken")
    unfilled = decide(price(defaults={"currency": "EUR"}), crm_item(productnumber=""),
                      Situation(sync_only_coupled=False), SHAPES)
    assert unfilled.verdict == "failed" and "(item_no, currency, min_quantity)" in unfilled.reason


def test_columns_key_types_each_column_as_its_column() -> None:
    side = price(defaults={"currency": "EUR"}).erp
    assert columns_key(side, {"item_no": "A", "min_quantity": 2.50}, ERP) == '["A","EUR","2.5"]'
    assert columns_key(side, {"item_no": "", "min_quantity": 1}, ERP) is None
    assert columns_key(side, {"item_no": "A", "min_quantity": "many"}, ERP) is None


def test_a_match_names_the_partner_by_its_key_text() -> None:
    mapping = price(defaults={"currency": "EUR"}).model_copy(update={"match_on": [
        MatchField(erp="item_no", crm="productnumber")]})
    partner = {"item_no": "1000", "currency": "EUR", "min_quantity": Decimal("10.000"), "unit_price": Decimal("9.5"),
               "modified_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}
    decision = decide(mapping, crm_item(), Situation(sync_only_coupled=False, candidates=((partner,),)), SHAPES)
    assert decision.verdict == "coupled" and decision.partner_key == '["1000","EUR","10"]'
    two = decide(mapping, crm_item(), Situation(sync_only_coupled=False, candidates=((partner, {
        **partner, "min_quantity": Decimal(5)}),)), SHAPES)
    assert two.verdict == "failed" and '["1000","EUR","10"], ["1000","EUR","5"]' in two.reason


# a sales line keyed (document_no, line_no): the document carried from the CRM, the line number its column's default
SALES_LINE = Shape({"document_no": Col("varchar", 20), "line_no": Col("int4"), "description": Col("varchar", 50),
                    "modified_at": Col("timestamptz")})
QUOTE_LINE = Shape({"id": Col("uuid"), "quotenumber": Col("varchar", 20), "description": Col("varchar", 50),
                    "lineitemnumber": Col("int4"), "modifiedon": Col("timestamptz")})
LINE_SHAPES = Shapes(SALES_LINE, QUOTE_LINE, erp_key_type="varchar", crm_key_type="uuid")


def sales_line(*fields: dict[str, Any], **erp: Any) -> TableMapping:
    spec = {"name": "LINE", "sync_only_coupled": False,
            "erp": {"table": "sales_line", "key": ["document_no", "line_no"], "modified_on": "modified_at", **erp},
            "crm": {"table": "quotedetail", "key": "id", "modified_on": "modifiedon"},
            "fields": [{"erp": "document_no", "crm": "quotenumber"}, {"erp": "description", "crm": "description"},
                       *fields]}
    return MappingFile.model_validate({"mappings": [spec]}).get("LINE")


def quote_line(**values: Any) -> Change:
    row = {"id": uuid.UUID(int=9), "quotenumber": "SO1001", "description": "Bolts",
           "modifiedon": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), **values}
    return Change("crm", "c", str(row["id"]), row)


def test_the_key_columns_drawn_from_their_defaults_are_those_nothing_else_fills() -> None:
    assert sales_line().drawn_key_columns("erp") == ("line_no",)
    assert sales_line(defaults={"line_no": 10000}).drawn_key_columns("erp") == ()
    assert price().drawn_key_columns("erp") == ("currency",)
    assert price(defaults={"currency": "EUR"}).drawn_key_columns("erp") == ()
    assert price().drawn_key_columns("crm") == (), "a uuid key is derived, not drawn"


def test_a_creation_with_a_drawn_key_column_asks_for_it_before_it_writes_anything() -> None:
    d = decide(sales_line(), quote_line(), Situation(sync_only_coupled=False), LINE_SHAPES)
    assert d.needs_key and d.verdict == "created" and not d.writes and d.coupling is None


def test_the_drawn_column_and_the_carried_ones_make_the_key_written_and_coupled() -> None:
    d = decide(sales_line(), quote_line(), Situation(sync_only_coupled=False, allocated="7"), LINE_SHAPES)
    assert d.verdict == "created" and not d.needs_key
    [write] = d.writes
    assert (write.kind, write.key) == ("insert", '["SO1001","7"]')
    assert write.values == {"document_no": "SO1001", "description": "Bolts"}, "the key's columns come from its text"
    assert d.partner_key == write.key and d.coupling.erp_key == write.key


def test_a_drawn_line_no_flowing_only_to_the_crm_is_written_back_to_the_line_it_came_from() -> None:
    mapping = sales_line({"erp": "line_no", "crm": "lineitemnumber", "direction": "to_crm"})
    assert mapping.drawn_key_columns("erp") == ("line_no",)
    d = decide(mapping, quote_line(), Situation(sync_only_coupled=False, allocated="7"), LINE_SHAPES)
    assert [(w.system, w.kind, w.values) for w in d.writes] == [
        ("erp", "insert", {"document_no": "SO1001", "description": "Bolts"}),
        ("crm", "update", {"lineitemnumber": "7"})]


def test_an_announced_key_is_reused_and_nothing_is_drawn_again() -> None:
    d = decide(sales_line(), quote_line(), Situation(sync_only_coupled=False, intent='["SO1001","3"]'), LINE_SHAPES)
    assert not d.needs_key and d.writes[0].key == '["SO1001","3"]'


def test_a_drawn_key_some_record_holds_is_taken_and_a_failed_draw_fails_the_creation() -> None:
    taken = decide(sales_line(), quote_line(), Situation(sync_only_coupled=False, allocated="7",
                                                         taken_keys=frozenset({'["SO1001","7"]'})), LINE_SHAPES)
    assert (taken.verdict, taken.error) == ("failed", "key taken")
    failed = decide(sales_line(), quote_line(), Situation(sync_only_coupled=False, allocation_failed="no key: x"),
                    LINE_SHAPES)
    assert (failed.verdict, failed.error) == ("failed", "no key: x")
    no_document = decide(sales_line(), quote_line(quotenumber=None), Situation(sync_only_coupled=False,
                                                                                allocated="7"), LINE_SHAPES)
    assert no_document.verdict == "failed" and "(document_no, line_no)" in no_document.reason


# ---------------------------------------------------------------- the writer's statements


@dataclass(frozen=True)
class WriterCol:
    type_name: str
    max_length: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class WriterTable:
    name: str
    schema: str
    columns: dict[str, WriterCol]
    primary_key: list[str]


LINES = WriterTable('price "line"', "sales", {"item no": WriterCol("varchar"), "currency": WriterCol("varchar"),
                                              "min_quantity": WriterCol("numeric"), "unit_price": WriterCol("numeric")},
                    ["item no", "currency", "min_quantity"])


def write(kind: str, key: str, **values: Any) -> TableWrite:
    return TableWrite(LINES, Write("erp", kind, key, values), 0)  # type: ignore[arg-type]


def test_one_record_is_written_by_every_key_column_quoted() -> None:
    sql, args, columns = _statement(write("update", '["A","EUR","10"]', unit_price="2", currency="EUR"))
    assert sql == ('UPDATE "sales"."price ""line""" SET "unit_price" = $1 WHERE "item no" = $2 AND "currency" = $3 '
                   'AND "min_quantity" = $4')
    assert args == (Decimal(2), "A", "EUR", Decimal(10)) and columns == ("unit_price", "item no", "currency",
                                                                          "min_quantity")
    sql, args, _ = _statement(write("delete", '["A","EUR","10"]'))
    assert sql == ('DELETE FROM "sales"."price ""line""" WHERE "item no" = $1 AND "currency" = $2 '
                   'AND "min_quantity" = $3')
    sql, args, columns = _statement(write("insert", '["A","EUR","10"]', unit_price="2"))
    assert columns == ("unit_price", "item no", "currency", "min_quantity") and args[1:] == ("A", "EUR", Decimal(10))


def test_several_records_are_one_statement_joined_column_by_column() -> None:
    writes = [write("update", json.dumps(["A", "EUR", str(n)]), unit_price="2") for n in range(3)]
    rows = [_statement(w)[1] for w in writes]
    sql = _set_statement(writes[0], _statement(writes[0])[2], rows)
    assert sql == ('UPDATE "sales"."price ""line""" AS t SET "unit_price" = u.v0 FROM unnest($1::numeric[], '
                   '$2::varchar[], $3::varchar[], $4::numeric[]) AS u(v0, v1, v2, v3) WHERE t."item no" = u.v1 '
                   'AND t."currency" = u.v2 AND t."min_quantity" = u.v3')
    deletes = [write("delete", json.dumps(["A", "EUR", str(n)])) for n in range(3)]
    sql = _set_statement(deletes[0], _statement(deletes[0])[2], [_statement(d)[1] for d in deletes])
    assert sql == ('DELETE FROM "sales"."price ""line""" AS t USING unnest($1::varchar[], $2::varchar[], '
                   '$3::numeric[]) AS u(v0, v1, v2) WHERE t."item no" = u.v0 AND t."currency" = u.v1 '
                   'AND t."min_quantity" = u.v2')
    twice = [writes[0], writes[0]]
    assert _set_statement(twice[0], _statement(twice[0])[2], [_statement(w)[1] for w in twice]) is None, \
        "a record written twice: one statement per row"


def test_a_key_text_of_another_width_is_refused_before_anything_is_written() -> None:
    with pytest.raises(CoercionError, match="is not a key of 3 columns"):
        _statement(write("delete", "A"))


# ---------------------------------------------------------------- validation: one line, file:line:col

FILE = """\
version: 1
mappings:
  - name: PRICE
    erp:
      table: price_line
      key: [item_no, currency, min_quantity]
      modified_on: modified_at
    crm: {table: productpricelevel, key: productpricelevelid, modified_on: modifiedon}
    fields:
      - {erp: item_no, crm: productnumber}
      - {erp: currency, crm: currencycode}
      - {erp: min_quantity, crm: quantity}
"""
TIER = """\
  - name: TIER
    direction: to_crm
    erp: {table: tier, key: code, modified_on: modified_at}
    crm: {table: tier, key: tierid, modified_on: modifiedon}
    fields:
      - {erp: price, crm: price, lookup: PRICE}
"""


def catalogs(erp_key: tuple[str, ...] = ("item_no", "currency", "min_quantity")) -> tuple[dict[str, Table], ...]:
    def table(name: str, key: tuple[str, ...], *columns: tuple[str, str]) -> Table:
        return Table(name, "public", {c: Column(c, t) for c, t in columns}, list(key))
    erp = {"price_line": table("price_line", erp_key, ("item_no", "varchar"), ("currency", "varchar"),
                               ("min_quantity", "numeric"), ("modified_at", "timestamptz")),
           "tier": table("tier", ("code",), ("code", "varchar"), ("price", "varchar"), ("modified_at", "timestamptz"))}
    crm = {"productpricelevel": table("productpricelevel", ("productpricelevelid",), ("productpricelevelid", "uuid"),
                                      ("productnumber", "varchar"), ("currencycode", "varchar"),
                                      ("quantity", "numeric"), ("modifiedon", "timestamptz")),
           "tier": table("tier", ("tierid",), ("tierid", "uuid"), ("price", "varchar"), ("modifiedon", "timestamptz"))}
    return erp, crm


def located(tmp_path: Path, text: str, erp_key: tuple[str, ...] = ("item_no", "currency", "min_quantity")
            ) -> list[str]:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    where = locator(path)
    problems = catalog_problems(load_mapping_file(path), *catalogs(erp_key))
    return [f"{where(p.at).removeprefix(str(tmp_path) + '/')}: {p.text}" for p in problems]


def test_the_file_fits_its_catalog_but_for_a_lookup_naming_one_column_for_a_composite_key(tmp_path: Path) -> None:
    assert located(tmp_path, FILE + TIER) == [
        "prices.yaml:18:15: mapping TIER, field price <-> price: lookup to PRICE: its erp key has 3 columns "
        "(item_no, currency, min_quantity) and the field names 1 (price): name one erp column per key column, in "
        "the key's order"]


CURRENCY_FIELD = "      - {erp: currency, crm: currencycode}\n"
PK = ("item_no", "currency", "min_quantity")


@pytest.mark.parametrize(("change", "erp_key", "expected"), [
    (("key: [item_no, currency, min_quantity]", "key: [item_no, min_quantity, currency]"),
     PK,
     "prices.yaml:6:12: mapping PRICE, erp key: [item_no, min_quantity, currency] is not the primary key (item_no, "
     "currency, min_quantity) of table price_line: name its columns in that order, key: [item_no, currency, "
     "min_quantity]"),
    (("key: [item_no, currency, min_quantity]", "key: item_no"), PK,
     "prices.yaml:6:12: mapping PRICE, erp key: column item_no is not the primary key (item_no, currency, "
     "min_quantity) of table price_line: name its columns in that order, key: [item_no, currency, min_quantity]"),
    (("key: [item_no, currency, min_quantity]", "key: [item_no, currency, minimum]"),
     PK,
     "prices.yaml:6:12: mapping PRICE, erp key: column 'minimum' not found in table price_line"),
    (("key: [item_no, currency, min_quantity]\n", "key: [item_no, currency]\n"), ("item_no", "currency"),
     "prices.yaml:6:12: mapping PRICE, erp new_key: strategy columns: no field mapping from the crm, no entry in "
     "defaults and no column default fills key column currency"),
])
def test_a_wrong_key_declaration_is_one_line_with_its_place(tmp_path: Path, change: tuple[str, str],
                                                            erp_key: tuple[str, ...], expected: str) -> None:
    text = FILE.replace(*change)
    if erp_key != PK:  # and nothing fills the currency of a line created from the CRM
        text = text.replace(CURRENCY_FIELD, "")
    assert located(tmp_path, text, erp_key) == [expected]


def test_a_key_column_nothing_fills_is_drawn_from_its_column_default(tmp_path: Path) -> None:
    text = FILE.replace(CURRENCY_FIELD, "")

    def problems(currency: Column) -> list[str]:
        erp, crm = catalogs()
        erp["price_line"].columns["currency"] = currency
        path = tmp_path / "prices.yaml"
        path.write_text(text)
        return [f"{locator(path)(p.at).removeprefix(str(tmp_path) + '/')}: {p.text}"
                for p in catalog_problems(load_mapping_file(path), erp, crm)]

    assert problems(Column("currency", "varchar", has_default=True, default="next_currency()")) == []
    assert problems(Column("currency", "int4", has_default=True, identity="d")) == []
    assert problems(Column("currency", "int4", has_default=True, identity="a")) == [
        "prices.yaml:6:12: mapping PRICE, erp new_key: strategy columns: key column currency, which no field "
        "mapping or default fills, is GENERATED ALWAYS AS IDENTITY, which refuses a key chosen before the insert "
        "(make it BY DEFAULT)"]
    assert problems(Column("currency", "varchar")) == [
        "prices.yaml:6:12: mapping PRICE, erp new_key: strategy columns: no field mapping from the crm, no entry in "
        "defaults and no column default fills key column currency"]


@pytest.mark.parametrize(("change", "expected"), [
    (("modified_on: modified_at\n    crm", "modified_on: modified_at\n      new_key: {strategy: series}\n    crm"),
     "prices.yaml:8:16: mapping PRICE, erp.new_key: a composite key (item_no, currency, min_quantity) takes "
     "new_key strategy columns (each key column from what the creation writes into it), not series"),
    (("key: [item_no, currency, min_quantity]", "key: [item_no, item_no]"),
     "prices.yaml:6:12: mapping PRICE, erp.key: key names a column more than once: ['item_no', 'item_no']"),
    (("key: [item_no, currency, min_quantity]", "key: []"),
     "prices.yaml:6:12: mapping PRICE, erp.key: key names at least one column"),
    (("key: [item_no, currency, min_quantity]", "key: [item_no, 5]"),
     "prices.yaml:6:12: mapping PRICE, erp.key: key columns are names (text), not [5]"),
])
def test_a_malformed_key_is_one_line_with_its_place(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping_text(textwrap.dedent(FILE.replace(*change)), "prices.yaml")
    assert caught.value.problems == [expected]
