from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from cdc.errors import ConfigError
from cdc.mapping.load import MappingFileError, default_mapping_file, load_mapping_file, parse_mapping_text
from cdc.mapping.model import FieldMapping, FormatNumber, MappingFile, NewKey, Replace, TableMapping

ONE_MAPPING = """\
version: 1
mappings:
  - name: CUSTOMER
    direction: both
    erp: {table: customer, key: 'no', modified_on: modified_at}
    crm: {table: account, key: accountid, modified_on: modifiedon}
    fields:
      - {erp: name, crm: name}
      - {erp: email, crm: emailaddress1}
"""


def problems_of(text: str, name: str = "mappings.yaml") -> list[str]:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping_text(textwrap.dedent(text), name)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_the_default_file_holds_the_seven_standard_mappings():
    names = [m.name for m in default_mapping_file().mappings]
    assert names == ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT",
                     "ITEM-PRODUCT"]


def test_a_file_on_disk_loads(tmp_path: Path):
    path = tmp_path / "mappings.yaml"
    path.write_text(ONE_MAPPING)
    assert load_mapping_file(path).get("CUSTOMER").crm.table == "account"


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_mapping_file(tmp_path / "nope.yaml")
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: no such mapping file"]
    assert caught.value.exit_code == 2


def test_a_yaml_syntax_error_names_line_and_column():
    [line] = problems_of("version: 1\nmappings:\n  - name: A\n    erp: {table: [x\n")
    assert line.startswith("mappings.yaml:5:1: YAML syntax error: ")
    [line] = problems_of("version: 1\nmappings:\n  - name: A\n   bad: indent\n")
    assert line.startswith("mappings.yaml:4:")
    assert "YAML syntax error" in line


def test_a_lookup_to_an_unknown_mapping_names_mapping_and_field():
    text = ONE_MAPPING.replace("{erp: name, crm: name}", "{erp: name, crm: name, lookup: FOO}")
    assert problems_of(text) == ["mappings.yaml: mapping CUSTOMER, field name <-> name: "
                                 "lookup to unknown mapping 'FOO'"]


def test_every_broken_reference_is_its_own_line():
    text = ONE_MAPPING.replace("{erp: name, crm: name}", "{erp: name, crm: name, lookup: FOO}").replace(
        "{erp: email, crm: emailaddress1}", "{erp: email, crm: emailaddress1, lookup: BAR}").replace(
        "direction: both", "direction: both\n    depends_on: [BAZ]")
    assert problems_of(text) == [
        "mappings.yaml: mapping CUSTOMER, field name <-> name: lookup to unknown mapping 'FOO'",
        "mappings.yaml: mapping CUSTOMER, field email <-> emailaddress1: lookup to unknown mapping 'BAR'",
        "mappings.yaml: mapping CUSTOMER: depends_on names unknown mapping 'BAZ'",
    ]


def test_a_bad_direction_names_place_mapping_setting_and_value():
    assert problems_of(ONE_MAPPING.replace("direction: both", "direction: sideways")) == [
        "mappings.yaml:4:16: mapping CUSTOMER, direction: input should be 'both', 'to_crm' or 'to_erp' "
        "(got 'sideways')"]


def test_field_level_problems_name_the_field():
    text = ONE_MAPPING.replace("{erp: email, crm: emailaddress1}",
                               "{erp: email, crm: emailaddress1, direction: up, to_crm: [{op: shout}]}")
    assert problems_of(text) == [
        "mappings.yaml:9:53: mapping CUSTOMER, field email <-> emailaddress1, direction: input should be "
        "'both', 'to_crm' or 'to_erp' (got 'up')",
        "mappings.yaml:9:66: mapping CUSTOMER, field email <-> emailaddress1, to_crm[0]: "
        "unknown 'op' 'shout'; expected one of 'trim', 'upper', 'lower', 'title', 'replace', 'regex', "
        "'round', 'truncate', 'format_date', 'format_number'",
    ]


def test_all_problems_are_collected_one_line_each():
    text = ONE_MAPPING.replace("key: 'no', ", "").replace(
        "modified_on: modifiedon}", "modified_on: modifiedon, tabel: x}").replace(
        "direction: both", "direction: sideways\n    conflict: whoever")
    problems = problems_of(text)
    assert len(problems) == 4
    assert "mapping CUSTOMER, erp: required key 'key' is missing" in problems[0]
    assert problems[1].endswith("mapping CUSTOMER, crm: unknown key 'tabel'")
    assert any("direction" in p and "'sideways'" in p for p in problems)
    assert any("conflict" in p and "'whoever'" in p for p in problems)


def test_a_broken_filter_is_one_line_not_one_per_filter_shape():
    text = ONE_MAPPING.replace(
        "modified_on: modified_at}",
        "modified_on: modified_at, filter: {all: [{field: blocked, op: equals, value: x}]}}")
    [line] = problems_of(text)
    assert "mapping CUSTOMER, erp.filter.all[0].op: input should be 'eq'" in line
    text = ONE_MAPPING.replace("modified_on: modified_at}", "modified_on: modified_at, filter: blocked}")
    assert problems_of(text) == [
        "mappings.yaml:5:73: mapping CUSTOMER, erp.filter: a filter is {field, op, value}, {all: [...]}, "
        "{any: [...]} or {not: ...} (got 'blocked')"]


def test_sql_looking_identifiers_are_rejected():
    for before, after in [("table: customer", "table: 'customer; drop table x'"),
                          ("{erp: name, crm: name}", "{erp: 'name\"--', crm: name}"),
                          ("modified_on: modified_at}",
                           "modified_on: modified_at, filter: {field: 'a or 1=1', op: is_null}}"),
                          ("modified_on: modified_at}", "modified_on: modified_at, defaults: {'x y': 1}}"),
                          ("modified_on: modified_at}",
                           "modified_on: modified_at, new_key: {strategy: field, field: 'a;b'}}"),
                          ("key: accountid", "key: accountid, schema: 'public\".\"x'")]:
        [line] = problems_of(ONE_MAPPING.replace(before, after))
        assert "is not a plain SQL identifier" in line, line


def test_unquoted_yaml_booleans_get_a_hint():
    [line] = problems_of(ONE_MAPPING.replace("key: 'no'", "key: no"))
    assert "mapping CUSTOMER, erp.key: input should be a valid string, or a list of them (got False)" in line
    assert "quote the value" in line


def test_a_key_given_twice_is_reported():
    problems = problems_of(ONE_MAPPING.replace("direction: both", "direction: both\n    direction: to_crm"))
    assert problems == ["mappings.yaml:5:5: key 'direction' appears twice in one block"]


def test_an_empty_or_shapeless_file_is_one_line():
    assert problems_of("") == ["mappings.yaml: the file is empty; it needs 'version: 1' and 'mappings'"]
    assert problems_of("- a\n- b\n") == [
        "mappings.yaml: the file must hold a mapping with 'version: 1' and 'mappings'"]
    assert problems_of("version: 1\nmappings: []\n") == [
        "mappings.yaml:2:11: mappings: list should have at least 1 item after validation, not 0"]


def test_a_dependency_cycle_is_reported_by_the_loader():
    text = ONE_MAPPING + textwrap.indent(textwrap.dedent("""\
        - name: CONTACTS
          erp: {table: contact, key: 'no', modified_on: modified_at}
          crm: {table: contact, key: contactid, modified_on: modifiedon}
          fields: [{erp: customer_no, crm: parentcustomerid, lookup: CUSTOMER}]
        """), "  ")
    text = text.replace("direction: both", "direction: both\n    depends_on: [CONTACTS]")
    assert problems_of(text) == [
        "mappings.yaml: mappings depend on each other in a cycle: CUSTOMER -> CONTACTS -> CUSTOMER"]


# ---------------------------------------------------------------- model fixes the loader relies on

def field(**kwargs) -> FieldMapping:
    return FieldMapping.model_validate(kwargs)


def test_value_map_keys_are_text_whatever_yaml_made_of_them():
    data = yaml.safe_load("{erp: a, crm: b, value_map: {2: x, false: y, '3': z}}")
    assert field(**data).value_map == {"2": "x", "False": "y", "3": "z"}


def test_filter_values_fit_their_operator():
    base = yaml.safe_load(ONE_MAPPING)
    for condition, message in [({"field": "a", "op": "eq", "value": [1, 2]}, "takes one value, not a list"),
                               ({"field": "a", "op": "in", "value": [1, None]}, "values cannot be null"),
                               ({"field": "a", "op": "in", "value": [[1]]}, "a scalar or a list of scalars"),
                               ({"field": "a", "op": "in", "value": []}, "needs a non-empty list"),
                               ({"field": "a", "op": "is_null", "value": 1}, "takes no value")]:
        base["mappings"][0]["erp"]["filter"] = condition
        with pytest.raises(ValidationError, match=message):
            MappingFile.model_validate(base)


def test_transform_settings_that_cannot_work_are_rejected():
    with pytest.raises(ValidationError, match="at least 1 character"):
        Replace(op="replace", old="")
    with pytest.raises(ValidationError, match="exactly one"):
        FormatNumber(op="format_number", format="{0.__class__}")
    with pytest.raises(ValidationError, match="exactly one"):
        FormatNumber(op="format_number", format="{} {}")
    assert FormatNumber(op="format_number", format="EUR {:,.2f}").format == "EUR {:,.2f}"


def test_a_new_key_prefix_must_leave_room():
    with pytest.raises(ValidationError, match="leaves no room"):
        NewKey(strategy="code", prefix="ABCDEF", length=6)


def test_a_column_written_twice_counts_only_in_the_directions_the_mapping_flows():
    base = yaml.safe_load(ONE_MAPPING)["mappings"][0]
    base["fields"] = [{"erp": "code", "crm": "isocurrencycode"}, {"erp": "code", "crm": "name"}]
    base["direction"] = "to_crm"
    assert TableMapping.model_validate(base).direction == "to_crm"
    base["direction"] = "both"
    with pytest.raises(ValidationError, match="written by more than one field mapping"):
        TableMapping.model_validate(base)
