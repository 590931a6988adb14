"""A lookup to a composite key, without a database: a field naming one column per key column of the referenced
record (`erp: [item_no, unit_code]`), its key text built as couplings store it, resolved both ways, the
`on_lookup_failure` policies over all its columns, and validation's one-line errors with file:line:col."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cdc.catalog import Column, Table
from cdc.mapping.load import load_mapping_file, locator
from cdc.mapping.model import MappingFile, TableMapping
from cdc.mapping.validate import catalog_problems
from cdc.orchestrator.verify import compare_pair
from cdc.values import CoercionError
from consumers.decisions.fields import lookup_needs, target_values
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Change, Shapes, Situation, decide
from schemas import key_text
from tests.unit.test_decisions import Col, Coupling, Shape

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# A barcode names its unit of measure: in the ERP by the unit's key (item, code), in the CRM by the unit's UUID.
ERP = Shape({"barcode": Col("varchar", 20), "item_no": Col("int4"), "unit_code": Col("varchar", 10),
             "modified_at": Col("timestamptz")})
CRM = Shape({"id": Col("uuid"), "barcode": Col("varchar", 20), "uomid": Col("uuid"), "modifiedon": Col("timestamptz")})
SHAPES = Shapes(ERP, CRM, erp_key_type="varchar", crm_key_type="uuid", erp_key_length=20)
UOM = str(uuid.UUID(int=42))
UNIT_KEY = '["1000","PCS"]'


def mappings(failure: str = "wait", conflict: str = "fail", erp_defaults: dict[str, Any] | None = None,
             crm_unit: str | list[str] = "uomid") -> MappingFile:
    unit_crm_key = "uomid" if isinstance(crm_unit, str) else ["productnumber", "unitname"]
    field_spec: dict[str, Any] = {"erp": ["item_no", "unit_code"], "crm": crm_unit, "lookup": "UNIT"}
    if failure != "wait":
        field_spec["on_lookup_failure"] = failure
    return MappingFile.model_validate({"mappings": [
        {"name": "UNIT", "erp": {"table": "item_unit", "key": ["item_no", "code"], "modified_on": "modified_at"},
         "crm": {"table": "uom", "key": unit_crm_key, "modified_on": "modifiedon"},
         "fields": [{"erp": "item_no", "crm": "productnumber"}, {"erp": "code", "crm": "unitname"}]},
        {"name": "BARCODE", "sync_only_coupled": False, "conflict": conflict,
         "erp": {"table": "item_barcode", "key": "barcode", "modified_on": "modified_at",
                 "new_key": {"strategy": "field", "field": "barcode"}, "defaults": erp_defaults or {}},
         "crm": {"table": "productbarcode", "key": "id", "modified_on": "modifiedon"},
         "fields": [{"erp": "barcode", "crm": "barcode"}, field_spec]},
    ]})


def barcode(**kwargs: Any) -> TableMapping:
    return mappings(**kwargs).get("BARCODE")


def erp_row(**values: Any) -> dict[str, Any]:
    return {"barcode": "4006381333931", "item_no": 1000, "unit_code": "PCS", "modified_at": T0, **values}


def crm_row(**values: Any) -> dict[str, Any]:
    return {"id": uuid.UUID(int=7), "barcode": "4006381333931", "uomid": uuid.UUID(UOM), "modifiedon": T0, **values}


def erp_change(**values: Any) -> Change:
    row = erp_row(**values)
    return Change("erp", "u", row["barcode"], row)


def crm_change(**values: Any) -> Change:
    row = crm_row(**values)
    return Change("crm", "u", str(row["id"]), row)


# ---------------------------------------------------------------- the model


def test_a_lookup_names_several_columns_and_keeps_one_as_it_was() -> None:
    f = barcode().fields[1]
    assert f.columns("erp") == ("item_no", "unit_code") and f.columns("crm") == ("uomid",)
    assert f.label == "[item_no, unit_code] <-> uomid"
    assert barcode().mapped_columns("erp") == ["barcode", "item_no", "unit_code"]
    with pytest.raises(ValueError, match="names several erp columns"):
        f.column("erp")
    single = MappingFile.model_validate({"mappings": [{
        "name": "A", "erp": {"table": "a", "key": "k", "modified_on": "m"},
        "crm": {"table": "b", "key": "k", "modified_on": "m"},
        "fields": [{"erp": ["x"], "crm": "y", "lookup": "A"}]}]}).get("A").fields[0]
    assert single.erp == "x", "a list of one column is that column"


@pytest.mark.parametrize(("spec", "message"), [
    ({"erp": ["a", "b"], "crm": "y"}, "only a lookup names several erp columns"),
    ({"erp": ["a", "b"], "crm": ["c", "d"], "value_map": {"1": 2}}, "only a lookup names several erp and crm"),
    ({"erp": [], "crm": "y", "lookup": "A"}, "a list of columns names at least one"),
    ({"erp": ["a", "a"], "crm": "y", "lookup": "A"}, "a column is named more than once"),
    ({"erp": ["a", 5], "crm": "y", "lookup": "A"}, r"columns are names \(text\), not \[5\]"),
    ({"erp": ["a", "b c"], "crm": "y", "lookup": "A"}, "is not a plain SQL identifier"),
])
def test_a_list_of_columns_is_checked(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MappingFile.model_validate({"mappings": [{
            "name": "A", "erp": {"table": "a", "key": "k", "modified_on": "m"},
            "crm": {"table": "b", "key": "k", "modified_on": "m"}, "fields": [{"erp": "k", "crm": "k"}, spec]}]})


# ---------------------------------------------------------------- the key text, as couplings store it


def test_the_reference_is_the_key_text_of_the_columns_canonical_texts() -> None:
    assert lookup_needs(barcode(), "erp", erp_row()) == [("UNIT", "erp", UNIT_KEY)]
    assert lookup_needs(barcode(), "erp", erp_row(unit_code='A, "B"]')) == [
        ("UNIT", "erp", key_text.encode(["1000", 'A, "B"]']))]
    assert lookup_needs(barcode(), "erp", erp_row(unit_code=None)) == [], "a null column: no reference"
    assert lookup_needs(barcode(), "crm", crm_row()) == [("UNIT", "crm", UOM)]


UNIT_CODES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=10)


@settings(max_examples=60, deadline=None)
@given(item=st.integers(0, 2**31 - 1), code=UNIT_CODES)
def test_both_ways_a_coupled_unit_carries_exactly(item: int, code: str) -> None:
    """ERP → CRM: the reference's key text finds the unit's UUID; CRM → ERP: the unit's key text, read back into
    its columns, typed as they are."""
    unit = key_text.encode([str(item), code])
    lookups = {("UNIT", "erp", unit): UOM, ("UNIT", "crm", UOM): unit}
    to_crm, missing = target_values(barcode(), "erp", erp_row(item_no=item, unit_code=code), CRM, lookups)
    assert (to_crm["uomid"], missing) == (UOM, [])
    to_erp, missing = target_values(barcode(), "crm", crm_row(), ERP, lookups)
    assert (to_erp["item_no"], to_erp["unit_code"], missing) == (item, code, [])


def test_a_unit_composite_on_both_sides_is_carried_column_by_column() -> None:
    mapping = barcode(crm_unit=["productnumber", "unitname"])
    crm = Shape({**CRM.columns, "productnumber": Col("varchar", 20), "unitname": Col("varchar", 10)})
    lookups = {("UNIT", "erp", UNIT_KEY): '["P-1000","Piece"]'}
    values, _ = target_values(mapping, "erp", erp_row(), crm, lookups)
    assert (values["productnumber"], values["unitname"]) == ("P-1000", "Piece")


def test_a_partner_key_of_another_width_is_a_poison_value() -> None:
    with pytest.raises(CoercionError, match="is not one of 2 columns"):
        target_values(barcode(), "crm", crm_row(), ERP, {("UNIT", "crm", UOM): "1000"})


# ---------------------------------------------------------------- decisions and on_lookup_failure


def coupled(**prints: Any) -> Coupling:
    erp = {"barcode": "4006381333931", "item_no": 1000, "unit_code": "PCS"}
    crm = {"barcode": "4006381333931", "uomid": UOM}
    return Coupling("4006381333931", str(uuid.UUID(int=7)), {**erp, **prints.get("erp", {})},
                    {**crm, **prints.get("crm", {})})


def test_an_erp_change_of_its_unit_writes_the_units_uuid() -> None:
    other = str(uuid.UUID(int=43))
    decision = decide(barcode(), erp_change(unit_code="BOX"), Situation(
        coupling=coupled(), partner=crm_row(), lookups={("UNIT", "erp", '["1000","BOX"]'): other}), SHAPES)
    assert decision.verdict == "applied", decision.reason
    assert [(w.system, w.values) for w in decision.writes] == [("crm", {"uomid": other})]
    assert decision.coupling.erp_values["unit_code"] == "BOX" and decision.coupling.crm_values["uomid"] == other


def test_a_crm_change_of_its_unit_writes_both_erp_columns() -> None:
    other = str(uuid.UUID(int=43))
    decision = decide(barcode(), crm_change(uomid=uuid.UUID(other)), Situation(
        coupling=coupled(), partner=erp_row(), lookups={("UNIT", "crm", other): '["2000","BOX"]'}), SHAPES)
    assert decision.verdict == "applied", decision.reason
    assert [(w.system, w.values) for w in decision.writes] == [("erp", {"item_no": 2000, "unit_code": "BOX"})]
    assert decision.coupling.erp_values == {"barcode": "4006381333931", "item_no": 2000, "unit_code": "BOX"}


def test_a_creation_from_the_crm_writes_the_units_key_columns() -> None:
    change = Change("crm", "c", str(uuid.UUID(int=7)), crm_row())
    decision = decide(barcode(), change, Situation(sync_only_coupled=False,
                                                   lookups={("UNIT", "crm", UOM): UNIT_KEY}), SHAPES)
    assert decision.verdict == "created", decision.reason
    assert decision.writes[0].values == {"barcode": "4006381333931", "item_no": 1000, "unit_code": "PCS"}


@pytest.mark.parametrize("source", ["erp", "crm"])
def test_wait_parks_the_change_once_for_the_units_key(source: str) -> None:
    change = erp_change() if source == "erp" else crm_change()
    partner = crm_row() if source == "erp" else erp_row()
    decision = decide(barcode(), change, Situation(coupling=coupled(), partner=partner), SHAPES)
    key = UNIT_KEY if source == "erp" else UOM
    assert (decision.verdict, decision.waiting) == ("parked", (("UNIT", source, key),))
    assert decision.reason.count("not coupled") == 1, decision.reason


def test_fail_fails_the_record_naming_the_units_key() -> None:
    decision = decide(barcode(failure="fail"), erp_change(unit_code="BOX"),
                      Situation(coupling=coupled(), partner=crm_row()), SHAPES)
    assert decision.verdict == "failed"
    assert decision.error == ("[item_no, unit_code] <-> uomid: erp record '[\"1000\",\"BOX\"]' is not coupled in "
                              "UNIT (on_lookup_failure: fail)")


def test_clear_sets_every_column_to_null_or_its_default() -> None:
    to_crm = decide(barcode(failure="clear"), erp_change(unit_code="BOX"),
                    Situation(coupling=coupled(), partner=crm_row()), SHAPES)
    assert [(w.system, w.values) for w in to_crm.writes] == [("crm", {"uomid": None})]
    assert "unit_code" not in to_crm.coupling.erp_values, "carried again on the next change"
    to_erp = decide(barcode(failure="clear", erp_defaults={"item_no": 0}), crm_change(uomid=uuid.UUID(int=43)),
                    Situation(coupling=coupled(), partner=erp_row()), SHAPES)
    assert [(w.system, w.values) for w in to_erp.writes] == [("erp", {"item_no": 0, "unit_code": None})]
    assert "uomid" not in to_erp.coupling.crm_values


def test_a_conflict_won_by_the_crm_carries_its_unit_back_into_both_erp_columns() -> None:
    other = str(uuid.UUID(int=43))
    lookups = {("UNIT", "erp", '["1000","BOX"]'): str(uuid.UUID(int=44)), ("UNIT", "crm", other): '["3000","PAL"]'}
    situation = Situation(coupling=coupled(), partner=crm_row(uomid=uuid.UUID(other)), lookups=lookups)
    decision = decide(barcode(conflict="crm-wins"), erp_change(unit_code="BOX"), situation, SHAPES)
    assert [(w.system, w.values) for w in decision.writes] == [("erp", {"item_no": 3000, "unit_code": "PAL"})]
    failed = decide(barcode(), erp_change(unit_code="BOX"), situation, SHAPES)
    assert failed.verdict == "conflict" and "item_no+unit_code ↔ uomid: ERP [1000, 'BOX']" in failed.error


def test_verify_compares_the_units_columns() -> None:
    lookups = {("UNIT", "erp", UNIT_KEY): UOM, ("UNIT", "crm", UOM): UNIT_KEY}
    assert compare_pair(barcode(), erp_row(), crm_row(), SHAPES, lookups) == []
    differences = compare_pair(barcode(), erp_row(unit_code="BOX"), crm_row(), SHAPES,
                               {**lookups, ("UNIT", "erp", '["1000","BOX"]'): str(uuid.UUID(int=43))})
    assert [(d.column, d.direction) for d in differences] == [("uomid", "to_crm")]
    unresolved = compare_pair(barcode(), erp_row(unit_code="BOX"), crm_row(), SHAPES, {("UNIT", "crm", UOM): "x"})
    assert unresolved != [] and all(d.column != "uomid" for d in unresolved)


# ---------------------------------------------------------------- a pair's life, change after change


def applied(decision: Decision, rows: dict[str, dict[str, Any]]) -> Coupling:
    for write in decision.writes:
        rows[write.system].update(write.values)
    c = decision.coupling
    assert c is not None
    return Coupling(c.erp_key, c.crm_key, c.erp_values, c.crm_values)


UNITS = [("1000", "PCS"), ("1000", "BOX"), ("2000", "PCS"), ("2000", 'A, "B"]')]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["erp", "crm"]), st.integers(0, len(UNITS) - 1)), min_size=1,
                max_size=8), st.sets(st.integers(0, len(UNITS) - 1)))
def test_both_sides_name_the_same_unit_after_every_change(steps: list[tuple[str, int]], uncoupled: set[int]) -> None:
    """Either side changes its unit, in any order; units may be uncoupled (the change waits). After each decision
    the two sides name one unit — the ERP by its key columns, the CRM by the unit's partner — or the change is
    parked, leaving them as they were; and the pair's echo is nothing to write."""
    uuids = [str(uuid.UUID(int=100 + n)) for n in range(len(UNITS))]
    lookups: dict[tuple[str, Any, str], str] = {}
    for n, (item, code) in enumerate(UNITS):
        if n not in uncoupled or n == 0:
            lookups[("UNIT", "erp", key_text.encode([item, code]))] = uuids[n]
            lookups[("UNIT", "crm", uuids[n])] = key_text.encode([item, code])
    rows = {"erp": erp_row(item_no=1000, unit_code="PCS"), "crm": crm_row(uomid=uuid.UUID(uuids[0]))}
    coupling = coupled(crm={"uomid": uuids[0]})
    for system, n in steps:
        item, code = UNITS[n]
        before = {s: dict(r) for s, r in rows.items()}
        if system == "erp":
            rows["erp"].update(item_no=int(item), unit_code=code)
            change = Change("erp", "u", "4006381333931", dict(rows["erp"]))
        else:
            rows["crm"]["uomid"] = uuid.UUID(uuids[n])
            change = Change("crm", "u", str(uuid.UUID(int=7)), dict(rows["crm"]))
        partner = rows["crm" if system == "erp" else "erp"]
        decision = decide(barcode(), change, Situation(coupling=coupling, partner=dict(partner), lookups=lookups),
                          SHAPES)
        if decision.verdict == "parked":
            assert n in uncoupled
            rows = before  # the change waits; put back, as if it had never been made, to keep the pair comparable
            continue
        assert decision.verdict in ("applied", "unchanged"), decision.reason
        coupling = applied(decision, rows)
        erp_unit = key_text.encode([str(rows["erp"]["item_no"]), rows["erp"]["unit_code"]])
        assert lookups[("UNIT", "erp", erp_unit)] == str(rows["crm"]["uomid"])
        for echo in (Change("erp", "u", "4006381333931", dict(rows["erp"])),
                     Change("crm", "u", str(uuid.UUID(int=7)), dict(rows["crm"]))):
            partner = rows["crm" if echo.source == "erp" else "erp"]
            again = decide(barcode(), echo, Situation(coupling=coupling, partner=dict(partner), lookups=lookups),
                           SHAPES)
            assert again.verdict == "unchanged", again.reason


# ---------------------------------------------------------------- validation: one line, file:line:col

FILE = """\
version: 1
mappings:
  - name: UNIT
    erp: {table: item_unit, key: [item_no, code], modified_on: modified_at}
    crm: {table: uom, key: uomid, modified_on: modifiedon}
    fields:
      - {erp: item_no, crm: productnumber}
      - {erp: code, crm: unitname}
  - name: BARCODE
    erp: {table: item_barcode, key: barcode, modified_on: modified_at, new_key: {strategy: field, field: barcode}}
    crm: {table: productbarcode, key: id, modified_on: modifiedon}
    fields:
      - {erp: barcode, crm: barcode}
      - {erp: [item_no, unit_code], crm: uomid, lookup: UNIT}
"""


def catalogs(not_null: tuple[str, ...] = (), **types: str) -> tuple[dict[str, Table], dict[str, Table]]:
    def table(name: str, key: list[str], *columns: tuple[str, str]) -> Table:
        return Table(name, "public", {c: Column(c, types.get(c, t), nullable=c not in key and c not in not_null)
                                      for c, t in columns}, key)
    erp = {"item_unit": table("item_unit", ["item_no", "code"], ("item_no", "int4"), ("code", "varchar"),
                              ("modified_at", "timestamptz")),
           "item_barcode": table("item_barcode", ["barcode"], ("barcode", "varchar"), ("item_no", "int4"),
                                 ("unit_code", "varchar"), ("modified_at", "timestamptz"))}
    crm = {"uom": table("uom", ["uomid"], ("uomid", "uuid"), ("productnumber", "varchar"), ("unitname", "varchar"),
                        ("modifiedon", "timestamptz")),
           "productbarcode": table("productbarcode", ["id"], ("id", "uuid"), ("barcode", "varchar"),
                                   ("uomid", "uuid"), ("modifiedon", "timestamptz"))}
    return erp, crm


def located(tmp_path: Path, text: str, not_null: tuple[str, ...] = (), **types: str) -> list[str]:
    path = tmp_path / "units.yaml"
    path.write_text(text)
    where = locator(path)
    problems = catalog_problems(load_mapping_file(path), *catalogs(not_null, **types))
    return [f"{where(p.at).removeprefix(str(tmp_path) + '/')}: {p.text}" for p in problems]


def test_a_lookup_naming_the_units_key_columns_fits_its_catalog(tmp_path: Path) -> None:
    assert located(tmp_path, FILE) == []


@pytest.mark.parametrize(("change", "types", "expected"), [
    (("erp: [item_no, unit_code], crm: uomid", "erp: unit_code, crm: uomid"), {},
     "units.yaml:14:15: mapping BARCODE, field unit_code <-> uomid: lookup to UNIT: its erp key has 2 columns "
     "(item_no, code) and the field names 1 (unit_code): name one erp column per key column, in the key's order"),
    (("crm: uomid, lookup", "crm: [uomid, id], lookup"), {},
     "units.yaml:14:42: mapping BARCODE, field [item_no, unit_code] <-> [uomid, id]: lookup to UNIT: its crm "
     "key has 1 column (uomid) and the field names 2 ([uomid, id]): name one crm column per key column, in the "
     "key's order"),
    (("erp: [item_no, unit_code]", "erp: [unit_code, item_no]"), {"unit_code": "date"},
     "units.yaml:14:57: mapping BARCODE, field [unit_code, item_no] <-> uomid: erp column unit_code (date) cannot "
     "hold keys of UNIT (item_unit.item_no: int4)"),
    (("lookup: UNIT}", "lookup: UNIT, on_lookup_failure: clear}"), {"not_null": ("item_no",)},
     "units.yaml:14:82: mapping BARCODE, field [item_no, unit_code] <-> uomid: on_lookup_failure clear would write "
     "null into NOT NULL erp column item_no: give it a value in the mapping's erp defaults"),
])
def test_a_lookup_that_does_not_fit_the_units_key_is_one_line_with_its_place(
        tmp_path: Path, change: tuple[str, str], types: dict[str, Any], expected: str) -> None:
    assert expected in located(tmp_path, FILE.replace(*change), **types)


def test_a_hierarchy_over_a_composite_key_is_accepted(tmp_path: Path) -> None:
    """A parent named by as many columns as the key has (tests/integration/test_composite_hierarchy.py)."""
    text = FILE.replace("      - {erp: code, crm: unitname}\n",
                        "      - {erp: code, crm: unitname}\n      - {erp: [item_no, code], crm: uomid, lookup: UNIT, "
                        "direction: to_crm}\n")
    assert not any("hierarchy" in line or "lookup to UNIT" in line for line in located(tmp_path, text))

