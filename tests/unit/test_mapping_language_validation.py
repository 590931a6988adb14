"""Every new key of the mapping language is checked, each problem one line with file:line:col: on its own when
the file is read, against the catalog when the databases answer (`catalog_problems` + `locator`, what
`cdc mappings validate` prints)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cdc.catalog import Column, Table
from cdc.mapping.load import MappingFileError, load_mapping_file, locator, parse_mapping_text
from cdc.mapping.validate import catalog_problems

FILE = """\
version: 1
mappings:
  - name: OWNER
    direction: to_erp
    erp: {table: purchaser, key: code, modified_on: modified_at, new_key: {strategy: code, prefix: P}}
    crm: {table: systemuser, key: systemuserid, modified_on: modifiedon}
    fields:
      - {erp: name, crm: fullname}
  - name: VENDOR
    after_match: newest
    erp:
      table: vendor
      key: 'no'
      modified_on: modified_at
      new_key: {strategy: series}
      filter: {field: 'no', op: like, value: 'V%'}
    crm:
      table: supplier
      key: supplierid
      modified_on: modifiedon
      new_key: {strategy: series}
      filter: {not: {field: name, op: ilike, value: 'zz!_%', escape: '!'}}
    fields:
      - {erp: name, crm: name}
      - {erp: country, crm: country, normalize: [{op: trim}, {op: upper}]}
      - {erp: purchaser, crm: ownerid, lookup: OWNER, on_lookup_failure: clear}
"""


def column(name: str, type_name: str, **flags: object) -> Column:
    return Column(name, type_name, **flags)  # type: ignore[arg-type]


def catalogs(**changes: Column) -> tuple[dict[str, Table], dict[str, Table]]:
    vendor = {c.name: c for c in [
        column("no", "varchar", max_length=20, nullable=False, has_default=True,
               default="('V'::text || lpad((nextval('vendor_no'::regclass))::text, 6, '0'::text))"),
        column("name", "varchar", max_length=50), column("country", "varchar", max_length=10),
        column("purchaser", "varchar", max_length=10), column("modified_at", "timestamptz")]}
    supplier = {c.name: c for c in [
        column("supplierid", "uuid", nullable=False, has_default=True, default="gen_random_uuid()"),
        column("name", "varchar", max_length=50), column("country", "varchar", max_length=80),
        column("ownerid", "uuid"), column("modifiedon", "timestamptz")]}
    for name, changed in changes.items():
        system, col = name.split("__")
        (vendor if system == "erp" else supplier)[col] = changed
    erp = {"vendor": Table("vendor", "public", vendor, ["no"]),
           "purchaser": Table("purchaser", "public", {c.name: c for c in [
               column("code", "varchar", max_length=10, nullable=False), column("name", "varchar"),
               column("modified_at", "timestamptz")]}, ["code"])}
    crm = {"supplier": Table("supplier", "public", supplier, ["supplierid"]),
           "systemuser": Table("systemuser", "public", {c.name: c for c in [
               column("systemuserid", "uuid", nullable=False), column("fullname", "varchar"),
               column("modifiedon", "timestamptz")]}, ["systemuserid"])}
    return erp, crm


def live_problems(tmp_path: Path, text: str = FILE, **changes: Column) -> list[str]:
    path = tmp_path / "vendors.yaml"
    path.write_text(text)
    where = locator(path)
    return [f"{where(p.at)}: {p.text}" for p in catalog_problems(load_mapping_file(path), *catalogs(**changes))]


def file_problems(text: str) -> list[str]:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping_text(textwrap.dedent(text), "vendors.yaml")
    return caught.value.problems


def test_the_example_fits_its_catalog(tmp_path: Path) -> None:
    assert live_problems(tmp_path) == []


# -------------------------------------------------------------- against the catalog

def test_a_series_key_needs_a_default_that_makes_the_next_number(tmp_path: Path) -> None:
    bare = column("no", "varchar", max_length=20, nullable=False)
    assert live_problems(tmp_path, erp__no=bare) == [
        f"{tmp_path}/vendors.yaml:15:27: mapping VENDOR, erp new_key: strategy series needs a default on key no "
        "(a sequence, an expression or a function making the next number); it has none"]
    always = column("no", "int8", nullable=False, has_default=True, identity="a")
    assert [p for p in live_problems(tmp_path, erp__no=always) if "new_key" in p] == [
        f"{tmp_path}/vendors.yaml:15:27: mapping VENDOR, erp new_key: strategy series: key no is GENERATED ALWAYS "
        "AS IDENTITY, which refuses a key chosen before the insert (make it BY DEFAULT)"]
    by_default = column("no", "int8", nullable=False, has_default=True, identity="d")
    assert [p for p in live_problems(tmp_path, erp__no=by_default) if "new_key" in p] == []


def test_patterns_apply_to_text_columns(tmp_path: Path) -> None:
    assert live_problems(tmp_path, crm__name=column("name", "int4")) == [
        f"{tmp_path}/vendors.yaml:22:39: mapping VENDOR, crm filter on name: 'ilike' applies to text, not int4"]


def test_a_pattern_longer_than_its_column_is_no_problem(tmp_path: Path) -> None:
    text = FILE.replace("value: 'V%'", "value: '%%%%%%%%%%%%%%%%%%%%%%%%V_____'")
    assert live_problems(tmp_path, text) == []


def test_clear_into_a_not_null_column_needs_a_value_in_the_sides_defaults(tmp_path: Path) -> None:
    required = column("ownerid", "uuid", nullable=False)
    assert live_problems(tmp_path, crm__ownerid=required) == [
        f"{tmp_path}/vendors.yaml:26:74: mapping VENDOR, field purchaser <-> ownerid: on_lookup_failure clear "
        "would write null into NOT NULL crm column ownerid: give it a value in the mapping's crm defaults"]
    text = FILE.replace("      new_key: {strategy: series}\n      filter: {not",
                        "      new_key: {strategy: series}\n"
                        "      defaults: {ownerid: 6a1f0c9e-0000-4000-8000-000000000001}\n      filter: {not")
    assert live_problems(tmp_path, text, crm__ownerid=required) == []


def test_normalize_applies_to_text_on_both_sides(tmp_path: Path) -> None:
    assert live_problems(tmp_path, erp__country=column("country", "int4")) == [
        f"{tmp_path}/vendors.yaml:25:49: mapping VENDOR, field country <-> country: normalize applies to text, "
        "not erp column country (int4)"]


# -------------------------------------------------------------- in the file alone

@pytest.mark.parametrize(("change", "expected"), [
    (("after_match: newest", "after_match: latest"),
     "vendors.yaml:10:18: mapping VENDOR, after_match: input should be 'source', 'erp', 'crm', 'newest' or 'none' "
     "(got 'latest')"),
    (("new_key: {strategy: series}\n      filter: {field",
      "new_key: {strategy: series, prefix: V}\n      filter: {field"),
     "vendors.yaml:15:43: mapping VENDOR, erp.new_key.prefix: strategy series takes no prefix: the key column's "
     "default makes the key"),
    (("new_key: {strategy: series}\n      filter: {field", "new_key: {strategy: serial}\n      filter: {field"),
     "vendors.yaml:15:27: mapping VENDOR, erp.new_key.strategy: input should be 'uuid', 'code', 'field', "
     "'series' or 'columns' (got 'serial')"),
    (("value: 'V%'", "value: 7"),
     "vendors.yaml:16:15: mapping VENDOR, erp.filter: filter on no: 'like' needs a text pattern (got 7)"),
    (("value: 'V%'", "value: 'V%!', escape: '!'"),
     "vendors.yaml:16:15: mapping VENDOR, erp.filter: filter on no: pattern 'V%!' ends with its escape character "
     "'!'"),
    (("op: like, value: 'V%'", "op: eq, value: 'V', escape: '!'"),
     "vendors.yaml:16:15: mapping VENDOR, erp.filter: filter on no: escape applies to like, not_like, ilike and "
     "not_ilike"),
    (("escape: '!'", "escape: '!!'"),
     "vendors.yaml:22:21: mapping VENDOR, crm.filter.not: filter on name: escape '!!' must be one character, or "
     "empty for none"),
    (("on_lookup_failure: clear", "on_lookup_failure: skip"),
     "vendors.yaml:26:74: mapping VENDOR, field purchaser <-> ownerid, on_lookup_failure: input should be 'wait', "
     "'fail' or 'clear' (got 'skip')"),
    (("{erp: name, crm: name}", "{erp: name, crm: name, on_lookup_failure: fail}"),
     "vendors.yaml:24:51: mapping VENDOR, field name <-> name, on_lookup_failure: on_lookup_failure applies to a "
     "field with a lookup"),
    (("normalize: [{op: trim}, {op: upper}]", "normalize: [{op: regex, pattern: a}]"),
     "vendors.yaml:25:50: mapping VENDOR, field country <-> country, normalize[0]: unknown 'op' 'regex'; expected "
     "one of 'trim', 'upper', 'lower', 'title', 'truncate'"),
    (("normalize: [{op: trim}, {op: upper}]", "to_erp: [{op: trim}], normalize: [{op: upper}]"),
     "vendors.yaml:25:71: mapping VENDOR, field country <-> country, normalize: normalize applies to a field "
     "carried as it is, not with to_erp (both sides must be able to hold the same value)"),
])
def test_each_new_key_is_one_line_with_its_place(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in FILE
    assert file_problems(FILE.replace(old, new, 1)) == [expected]


def test_after_match_names_a_side_the_mapping_carries_from() -> None:
    text = FILE.replace("after_match: newest", "after_match: crm\n    direction: to_crm")
    assert file_problems(text) == [
        "vendors.yaml:9:5: mapping VENDOR: after_match crm: the mapping carries no values from the crm "
        "(direction to_crm)"]
