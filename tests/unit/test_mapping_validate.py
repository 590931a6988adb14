from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.catalog import Column, Table
from cdc.mapping.model import FieldMapping, MappingFile
from cdc.mapping.transforms import map_value
from cdc.mapping.validate import _value_problems, validate_against_catalog
from cdc.values import convert


def table(name: str, *columns: str, pk: tuple[str, ...] | None = None) -> Table:
    """Columns as 'name type[(n)] [not null] [default]'; the first column is the primary key unless `pk`."""
    parsed: dict[str, Column] = {}
    for spec in columns:
        column, type_spec, *flags = spec.split()
        match = re.fullmatch(r"(\w+)(?:\((\d+)\))?", type_spec)
        assert match
        parsed[column] = Column(name=column, type_name=match[1],
                                max_length=int(match[2]) if match[2] else None,
                                nullable="notnull" not in flags, has_default="default" in flags)
    return Table(name=name, schema="public", columns=parsed,
                 primary_key=list(pk) if pk is not None else [columns[0].split()[0]])


ERP = {t.name: t for t in [
    table("salesperson", "code varchar(20) notnull", "name varchar(50)", "blocked bool notnull default",
          "modified_at timestamptz notnull default"),
    table("customer", "no varchar(20) notnull", "name varchar(100) notnull default",
          "salesperson_code varchar(20)",
          "credit_limit numeric notnull default", "terms varchar(10) notnull default", "blocked varchar(10)",
          "active bool",
          "modified_at timestamptz notnull default"),
]}
CRM = {t.name: t for t in [
    table("systemuser", "systemuserid uuid notnull default", "fullname varchar(200) notnull default",
          "isdisabled bool notnull default", "modifiedon timestamptz notnull default"),
    table("account", "accountid uuid notnull default", "name varchar(160) notnull default", "ownerid uuid",
          "creditlimit numeric notnull default", "paymenttermscode int4", "statecode int4 notnull default",
          "customertypecode int4 notnull default", "description varchar(100)",
          "modifiedon timestamptz notnull default"),
]}

FILE: dict[str, Any] = {"mappings": [
    {"name": "SALESPEOPLE", "direction": "to_erp",
     "erp": {"table": "salesperson", "key": "code", "modified_on": "modified_at",
             "new_key": {"strategy": "code", "prefix": "SP", "length": 10}},
     "crm": {"table": "systemuser", "key": "systemuserid", "modified_on": "modifiedon",
             "filter": {"field": "isdisabled", "op": "eq", "value": False}},
     "fields": [{"erp": "name", "crm": "fullname"}]},
    {"name": "CUSTOMER",
     "erp": {"table": "customer", "key": "no", "modified_on": "modified_at",
             "filter": {"field": "blocked", "op": "ne", "value": "all"},
             "new_key": {"strategy": "code", "prefix": "C", "length": 10}},
     "crm": {"table": "account", "key": "accountid", "modified_on": "modifiedon",
             "filter": {"all": [{"field": "statecode", "op": "eq", "value": 0},
                                {"field": "customertypecode", "op": "in", "value": [3, "4"]}]},
             "defaults": {"statecode": 0}},
     "match_on": [{"erp": "name", "crm": "name"}],
     "fields": [{"erp": "name", "crm": "name"},
                {"erp": "salesperson_code", "crm": "ownerid", "lookup": "SALESPEOPLE"},
                {"erp": "credit_limit", "crm": "creditlimit", "to_crm": [{"op": "round", "digits": 0}]},
                {"erp": "terms", "crm": "paymenttermscode", "value_map": {"": None, "14D": 1, "30D": 2}},
                {"crm": "customertypecode", "constant": 3}]},
]}


def problems(change=None, erp: dict[str, Table] | None = None,
             crm: dict[str, Table] | None = None) -> list[str]:
    data = copy.deepcopy(FILE)
    if change:
        change(data)
    return validate_against_catalog(MappingFile.model_validate(data), ERP if erp is None else erp,
                                    CRM if crm is None else crm)


def customer(data: dict[str, Any]) -> dict[str, Any]:
    return data["mappings"][1]


def test_a_consistent_file_has_no_problems():
    assert problems() == []


def test_unknown_tables():
    assert problems(erp={"salesperson": ERP["salesperson"]}) == [
        "mapping CUSTOMER: erp table public.customer not found"]
    def other_schema(data):
        customer(data)["crm"]["schema"] = "sales"
    assert problems(other_schema) == ["mapping CUSTOMER: crm table sales.account not found"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: customer(d)["erp"].update(key="number"),
     "mapping CUSTOMER, erp key: column 'number' not found in table customer"),
    (lambda d: customer(d)["erp"].update(modified_on="changed"),
     "mapping CUSTOMER, erp modified_on: column 'changed' not found in table customer"),
    (lambda d: customer(d)["erp"].update(modified_on="name"),
     "mapping CUSTOMER, erp modified_on: column name is varchar(100), not a timestamp"),
    (lambda d: customer(d)["fields"].append({"erp": "city", "crm": "address1_city"}),
     "mapping CUSTOMER, field city <-> address1_city: erp column 'city' not found in table customer\n"
     "mapping CUSTOMER, field city <-> address1_city: crm column 'address1_city' not found in table account"),
    (lambda d: customer(d)["crm"].update(filter={"field": "state", "op": "eq", "value": 0}),
     "mapping CUSTOMER, crm filter on state: column not found in table account"),
    (lambda d: customer(d)["match_on"].append({"erp": "email", "crm": "name"}),
     "mapping CUSTOMER, match_on email <-> name: erp column 'email' not found in table customer"),
    (lambda d: customer(d)["crm"]["defaults"].update(state=1),
     "mapping CUSTOMER, crm defaults: column 'state' not found in table account"),
])
def test_unknown_columns(change, expected: str):
    assert problems(change) == expected.splitlines()


def test_a_key_must_be_the_tables_primary_key():
    erp = dict(ERP, customer=table("customer", *[f"{c.name} {c.type_name}" for c in
                                                 ERP["customer"].columns.values()], pk=()))
    assert problems(erp=erp) == ["mapping CUSTOMER, erp table customer: has no primary key "
                                 "(a primary key is required)"]
    erp = dict(ERP, customer=table("customer", *[f"{c.name} {c.type_name}" for c in
                                                 ERP["customer"].columns.values()], pk=("no", "name")))
    assert problems(erp=erp) == ["mapping CUSTOMER, erp key: column no is not the primary key (no, name) of table "
                                 "customer: name its columns in that order, key: [no, name]"]
    assert problems(lambda d: customer(d)["erp"].update(key="name")) == [
        "mapping CUSTOMER, erp key: column name is not the primary key (no) of table customer"]


@pytest.mark.parametrize(("flt", "expected"), [
    ({"field": "statecode", "op": "eq", "value": "active"},
     "mapping CUSTOMER, crm filter on statecode: 'active' does not convert to int4 (column statecode)"),
    ({"field": "statecode", "op": "in", "value": [0, 1.5]},
     "mapping CUSTOMER, crm filter on statecode: 1.5 does not convert to int4 (column statecode)"),
    ({"field": "name", "op": "eq", "value": "a\x00b"},  # True would be 'true', as PostgreSQL writes it (cdc.values)
     "mapping CUSTOMER, crm filter on name: 'a\\x00b' does not convert to varchar(160) (column name)"),
    ({"field": "ownerid", "op": "eq", "value": "nobody"},
     "mapping CUSTOMER, crm filter on ownerid: 'nobody' does not convert to uuid (column ownerid)"),
    ({"field": "statecode", "op": "starts_with", "value": "1"},
     "mapping CUSTOMER, crm filter on statecode: 'starts_with' applies to text, not int4"),
])
def test_filter_values_must_convert_to_the_column_type(flt: dict[str, Any], expected: str):
    assert problems(lambda d: customer(d)["crm"].update(filter=flt)) == [expected]


@pytest.mark.parametrize(("field", "expected"), [
    ({"erp": "active", "crm": "ownerid", "direction": "to_erp"},
     "mapping CUSTOMER, field active <-> ownerid: erp column active (bool) and crm column "
     "ownerid (uuid) have incompatible types"),
    ({"erp": "modified_at", "crm": "statecode", "direction": "to_crm"},
     "mapping CUSTOMER, field modified_at <-> statecode: erp column modified_at (timestamptz) and crm column "
     "statecode (int4) have incompatible types"),
])
def test_incompatible_field_types(field: dict[str, Any], expected: str):
    assert problems(lambda d: customer(d)["fields"].append(field)) == [expected]


def test_compatible_families_and_text_fit_anything():
    def fields(data):
        customer(data)["fields"] += [{"erp": "credit_limit", "crm": "statecode", "direction": "to_crm"},
                                     {"erp": "blocked", "crm": "customertypecode", "direction": "to_erp"},
                                     {"erp": "modified_at", "crm": "paymenttermscode", "enabled": False}]
        customer(data)["fields"].remove({"crm": "customertypecode", "constant": 3})
    assert problems(fields) == []


def test_lookups_are_checked_against_the_keys_of_the_looked_up_mapping():
    def lookup_into_text(data):
        customer(data)["fields"][1] = {"erp": "salesperson_code", "crm": "description",
                                       "lookup": "SALESPEOPLE"}
    assert problems(lookup_into_text) == []
    def lookup_into_numbers(data):
        customer(data)["fields"][1] = {"erp": "salesperson_code", "crm": "statecode", "lookup": "SALESPEOPLE"}
    assert problems(lookup_into_numbers) == [
        "mapping CUSTOMER, field salesperson_code <-> statecode: crm column statecode (int4) cannot hold "
        "keys of SALESPEOPLE (systemuser.systemuserid: uuid)"]
    def short_reference(data):
        customer(data)["fields"][1] = {"erp": "terms", "crm": "ownerid", "lookup": "SALESPEOPLE"}
        customer(data)["fields"].pop(3)
    def uuid_into_short_text(data):
        customer(data)["fields"][1] = {"erp": "salesperson_code", "crm": "description", "lookup": "SALESPEOPLE"}
        data["mappings"][0]["crm"]["key"] = "systemuserid"
    crm = dict(CRM, account=table("account", *[
        f"{c.name} {'varchar(30)' if c.name == 'description' else c.describe()} "
        f"{'notnull' if not c.nullable else ''} {'default' if c.has_default else ''}"
        for c in CRM["account"].columns.values()]))
    assert problems(uuid_into_short_text, crm=crm) == [
        "mapping CUSTOMER, field salesperson_code <-> description: crm column description (varchar(30)) is "
        "shorter than keys of SALESPEOPLE (systemuser.systemuserid: uuid)"]
    assert problems(short_reference) == [
        "mapping CUSTOMER, field terms <-> ownerid: erp column terms (varchar(10)) is shorter than keys of "
        "SALESPEOPLE (salesperson.code: varchar(20))"]


def test_constants_defaults_and_value_maps_must_fit_their_columns():
    def constant(data):
        customer(data)["fields"][-1] = {"crm": "customertypecode", "constant": "customer"}
    assert problems(constant) == ["mapping CUSTOMER, field <constant> <-> customertypecode: constant: "
                                  "'customer' does not convert to int4 (column customertypecode)"]
    assert problems(lambda d: customer(d)["crm"]["defaults"].update(statecode=None)) == [
        "mapping CUSTOMER, crm defaults, statecode: null cannot go into NOT NULL column statecode"]
    def value_map(data):
        customer(data)["fields"][3]["value_map"] = {"": None, "14D": "fourteen", "THIRTY-DAYS-NET": 2}
    assert problems(value_map) == [
        "mapping CUSTOMER, field terms <-> paymenttermscode: value map key: 'THIRTY-DAYS-NET' is longer than "
        "column terms (varchar(10))",
        "mapping CUSTOMER, field terms <-> paymenttermscode: value map value: 'fourteen' does not convert to "
        "int4 (column paymenttermscode)"]


def test_new_keys_must_fit_the_key_column():
    assert problems(lambda d: customer(d)["erp"].update(new_key={"strategy": "code", "length": 30})) == [
        "mapping CUSTOMER, erp new_key: keys of 30 characters do not fit key no (varchar(20))"]
    assert problems(lambda d: customer(d)["erp"].update(new_key={"strategy": "uuid"})) == [
        "mapping CUSTOMER, erp new_key: strategy uuid needs a uuid key or text of 36 characters, "
        "not no varchar(20)"]
    assert problems(lambda d: customer(d)["crm"].update(new_key={"strategy": "code"})) == [
        "mapping CUSTOMER, crm new_key: strategy code makes text keys, not uuid (accountid)"]
    by_field = {"strategy": "field", "field": "number"}
    assert problems(lambda d: customer(d)["erp"].update(new_key=by_field)) == [
        "mapping CUSTOMER, erp new_key: field 'number' not found in the crm table account"]


def test_new_keys_do_not_matter_on_a_side_nothing_is_created_on():
    assert problems(lambda d: d["mappings"][0]["crm"].update(new_key={"strategy": "code"})) == []


def test_required_columns_nothing_fills_are_reported_on_sides_records_are_created_on():
    crm = dict(CRM, account=table("account", *[
        f"{c.name} {c.describe()} {'notnull' if not c.nullable else ''} {'default' if c.has_default else ''}"
        for c in CRM["account"].columns.values()], "accountcategory int4 notnull"))
    assert problems(crm=crm) == [
        "mapping CUSTOMER, crm table account: column accountcategory is NOT NULL without a default and "
        "no field, constant or default fills it (records created in crm would fail)"]
    assert problems(lambda d: customer(d).update(direction="to_erp"), crm=crm) == []


def test_transforms_must_suit_the_source_column():
    def upper_on_numbers(data):
        customer(data)["fields"][2]["to_crm"] = [{"op": "upper"}]
    assert problems(upper_on_numbers) == [
        "mapping CUSTOMER, field credit_limit <-> creditlimit: to_crm transform upper cannot take numeric "
        "values (from erp column credit_limit)"]
    def formatted_into_numbers(data):
        customer(data)["fields"][2]["to_crm"] = [{"op": "format_number"}]
    assert problems(formatted_into_numbers) == [
        "mapping CUSTOMER, field credit_limit <-> creditlimit: to_crm transforms make text, but crm column "
        "creditlimit is numeric"]


# ---------------------------------------------------------------- issue #13.5: validate predicts what fails

def _active_map(value_map: dict[Any, Any], direction: str = "both") -> Any:
    def change(data: dict[str, Any]) -> None:
        customer(data)["fields"].append({"erp": "active", "crm": "description", "direction": direction,
                                         "value_map": value_map})
    return change


@pytest.mark.parametrize("value_map", [{"false": "N", "true": "Y"}, {False: "N", True: "Y"},
                                       {"no": "N", "yes": "Y"}, {"f": "N", "TRUE": "Y"}, {0: "N", 1: "Y"}])
def test_a_boolean_value_map_validate_accepts_carries_every_record(value_map: dict[Any, Any]) -> None:
    """`value_map: {'false': N, 'true': Y}` on a boolean column passed validation and then failed every record
    ("value False is not in the value map"): keys now match the column's values however YAML wrote them."""
    assert problems(_active_map(value_map)) == []
    field = MappingFile.model_validate(
        {"mappings": [{"name": "M", "erp": {"table": "t", "key": "k", "modified_on": "m"},
                       "crm": {"table": "u", "key": "k", "modified_on": "m"},
                       "fields": [{"erp": "active", "crm": "description", "value_map": value_map}]}]}
    ).get("M").fields[0]
    assert (map_value(field, False, "crm"), map_value(field, True, "crm")) == ("N", "Y")
    back = map_value(field, "N", "erp"), map_value(field, "Y", "erp")
    assert [convert(v, "bool") for v in back] == [False, True]


def test_a_boolean_value_map_must_list_both_values_and_no_value_twice() -> None:
    assert problems(_active_map({"true": "Y"})) == [
        "mapping CUSTOMER, field active <-> description: value map has no key for false: every record whose erp "
        "column active (bool) holds false would fail"]
    assert problems(_active_map({"true": "Y", "yes": "J", "false": "N"})) == [
        "mapping CUSTOMER, field active <-> description: value map keys 'true' and 'yes' are the same erp value "
        "True (erp column active, bool)"]
    # towards the CRM only, the CRM values need not cover anything
    assert problems(_active_map({"false": "N", "true": "Y"}, direction="to_crm")) == []


def test_number_keys_match_the_numbers_the_column_holds() -> None:
    def change(data: dict[str, Any]) -> None:
        customer(data)["fields"][3] = {"erp": "credit_limit", "crm": "paymenttermscode", "direction": "to_crm",
                                       "value_map": {"0": 1, "5000": 2, "10000.5": 3}}
    assert problems(change) == []
    field = MappingFile.model_validate(
        {"mappings": [{"name": "M", "erp": {"table": "t", "key": "k", "modified_on": "m"},
                       "crm": {"table": "u", "key": "k", "modified_on": "m"},
                       "fields": [{"erp": "a", "crm": "b", "value_map": {"0": 1, "5000": 2, "10000.5": 3}}]}]}
    ).get("M").fields[0]
    assert [map_value(field, Decimal(v), "crm") for v in ("0.00", "5000.00", "10000.50")] == [1, 2, 3]
    assert map_value(field, Decimal("2.0"), "erp") == "5000"


_KINDS = {"bool": "bool", "int4": "int", "numeric": "numeric", "float8": "float", "date": "date",
          "varchar": "text", "uuid": "uuid", "timestamptz": "timestamptz"}
_SPELLINGS = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.decimals(allow_nan=False, places=3),
                       st.floats(allow_nan=False, allow_infinity=False), st.dates(),
                       st.sampled_from(["true", "False", "yes", "n", "1", "0", " 7 ", "2.50", "1e3", "2024-02-29",
                                        "6a1f0c9e-0000-4000-8000-000000000001", "2024-01-01T10:00:00+02:00"]),
                       st.text(max_size=8))


@given(type_name=st.sampled_from(sorted(_KINDS)), key=_SPELLINGS)
@settings(max_examples=400, deadline=None)
def test_every_value_map_key_validate_accepts_matches_the_value_it_names(type_name: str, key: Any) -> None:
    """What `cdc mappings validate` accepts as a key of a column (it converts to the column's type) is found at run
    time for the record holding that value, as asyncpg returns it."""
    column = Column(name="c", type_name=type_name)
    if _value_problems(key, column):
        return
    text_key = str(key)  # YAML keys are text in the model
    if _value_problems(text_key, column):
        return
    typed = convert(text_key, _KINDS[type_name])
    field = FieldMapping(erp="c", crm="d", value_map={text_key: "x"})
    assert map_value(field, typed, "crm") == "x"
