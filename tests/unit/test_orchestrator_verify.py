"""The comparison core of `cdc verify`, and the replay events the orchestrator publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from cdc.mapping.model import MappingFile, MatchField, TableMapping
from cdc.orchestrator.replay import ReplayTarget, encode, pending
from cdc.orchestrator.verify import compare_pair, duplicate_groups, expects_coupling
from consumers.decisions.record import Shapes
from schemas.change_event import ChangeEvent, ReplayInfo, Source, encode_key

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Col:
    type_name: str
    max_length: int | None = None


@dataclass(frozen=True)
class Shape:
    columns: dict[str, Col]


ERP = Shape({"no": Col("varchar", 20), "name": Col("varchar", 30), "code": Col("varchar", 10),
             "credit": Col("numeric"), "owner": Col("varchar", 20), "blocked": Col("bool")})
CRM = Shape({"id": Col("uuid"), "name": Col("varchar", 10), "code": Col("varchar", 10), "credit": Col("numeric"),
             "number": Col("varchar", 20), "ownerid": Col("uuid")})
SHAPES = Shapes(ERP, CRM)


def mapping(direction: str = "both", **fields: dict[str, Any]) -> TableMapping:
    spec: dict[str, Any] = {
        "version": 1,
        "mappings": [
            {"name": "OWNERS", "direction": "to_erp", "erp": {"table": "sp", "key": "code", "modified_on": "m"},
             "crm": {"table": "user", "key": "id", "modified_on": "m"}, "fields": [{"erp": "code", "crm": "id"}]},
            {"name": "CUSTOMER", "direction": direction,
             "erp": {"table": "customer", "key": "no", "modified_on": "m",
                     "filter": {"field": "blocked", "op": "eq", "value": False}},
             "crm": {"table": "account", "key": "id", "modified_on": "m"},
             "fields": [
                 {"erp": "no", "crm": "number", "direction": "to_crm"},
                 {"erp": "name", "crm": "name"},
                 {"erp": "code", "crm": "code", "to_crm": [{"op": "upper"}], "direction": "to_crm"},
                 {"erp": "credit", "crm": "credit"},
                 {"erp": "owner", "crm": "ownerid", "lookup": "OWNERS", **fields.get("owner", {})},
             ]},
        ],
    }
    return MappingFile.model_validate(spec).get("CUSTOMER")


ACCOUNT = UUID("00000000-0000-4000-8000-000000000001")
OWNER = UUID("00000000-0000-4000-8000-000000000002")
LOOKUPS = {("OWNERS", "erp", "SP1"): str(OWNER), ("OWNERS", "crm", str(OWNER)): "SP1"}


def erp_row(**changes: Any) -> dict[str, Any]:
    return {"no": "C1", "name": "Acme", "code": "eur", "credit": Decimal("100.00"), "owner": "SP1", "blocked": False,
            **changes}


def crm_row(**changes: Any) -> dict[str, Any]:
    return {"id": ACCOUNT, "name": "Acme", "code": "EUR", "credit": Decimal("100.0000"), "number": "C1",
            "ownerid": OWNER, **changes}


def test_an_equal_pair_has_no_differences() -> None:
    assert compare_pair(mapping(), erp_row(), crm_row(), SHAPES, LOOKUPS) == []


def test_a_different_field_is_reported_once_with_what_the_sync_would_write() -> None:
    found = compare_pair(mapping(), erp_row(name="Acme Ltd"), crm_row(), SHAPES, LOOKUPS)
    assert [(f.column, f.direction, f.expected, f.actual) for f in found] == [("name", "to_crm", "Acme Ltd", "Acme")]


def test_values_are_compared_as_the_destination_stores_them() -> None:
    # truncated to the CRM's 10 characters, upper-cased, numbers compared by value
    found = compare_pair(mapping(), erp_row(name="A very long name"), crm_row(name="A very lon"), SHAPES, LOOKUPS)
    assert found == []


def test_lookups_compare_through_the_coupling_and_unresolved_ones_are_skipped() -> None:
    other = UUID("00000000-0000-4000-8000-000000000003")
    found = compare_pair(mapping(), erp_row(), crm_row(ownerid=other), SHAPES, LOOKUPS)
    assert [(f.column, f.expected, f.actual) for f in found] == [("ownerid", str(OWNER), str(other))]
    assert compare_pair(mapping(), erp_row(owner="SP9"), crm_row(), SHAPES, {}) == []


def test_a_field_cleared_because_its_lookup_failed_is_not_compared() -> None:
    cleared = mapping(owner={"on_lookup_failure": "clear"})
    assert compare_pair(cleared, erp_row(owner="SP9"), crm_row(ownerid=None), SHAPES, LOOKUPS) == []


def test_a_normalised_field_is_in_sync_only_when_both_sides_hold_it_byte_for_byte() -> None:
    normalised = MappingFile.model_validate({"mappings": [{
        "name": "CUSTOMER", "erp": {"table": "customer", "key": "no", "modified_on": "m"},
        "crm": {"table": "account", "key": "id", "modified_on": "m"},
        "fields": [{"erp": "name", "crm": "name"}, {"erp": "code", "crm": "code", "normalize": [{"op": "upper"}]}],
    }]}).get("CUSTOMER")
    assert compare_pair(normalised, erp_row(code="EUR"), crm_row(code="EUR"), SHAPES, {}) == []
    # the CRM's lower-case code carried to the ERP equals the ERP's: a plain field would pass, this one does not
    found = compare_pair(normalised, erp_row(code="EUR"), crm_row(code="eur"), SHAPES, {})
    assert [(f.column, f.direction, f.expected, f.actual) for f in found] == [("code", "to_crm", "EUR", "eur")]
    found = compare_pair(normalised, erp_row(code="eur"), crm_row(code="eur"), SHAPES, {})
    assert [(f.column, f.expected, f.actual) for f in found] == [("code", "EUR", "eur")]


def test_only_the_mapping_directions_and_in_filter_sources_count() -> None:
    # to_erp only: the ERP → CRM fields (number, code) are not compared
    assert compare_pair(mapping("to_erp"), erp_row(code="usd"), crm_row(number="X"), SHAPES, LOOKUPS) == []
    # a blocked ERP record is outside the filter: only CRM → ERP is compared, and name is equal that way
    assert compare_pair(mapping(), erp_row(blocked=True, code="usd"), crm_row(), SHAPES, LOOKUPS) == []


def test_duplicates_are_match_values_held_by_more_records_on_one_side() -> None:
    match_on = [MatchField(erp="email", crm="emailaddress1", priority=1),
                MatchField(erp="name", crm="name", priority=2, case_sensitive=True)]
    erp = [("C1", {"email": "a@x.dk", "name": "A"}), ("C2", {"email": "A@X.DK", "name": "B"}),
           ("C3", {"email": "c@x.dk", "name": "C"}), ("C4", {"email": "d@x.dk", "name": "D"}),
           ("C5", {"email": "", "name": "E"}), ("C6", {"email": None, "name": "E"})]
    crm = [("K1", {"emailaddress1": "a@x.dk", "name": "A"}), ("K3", {"emailaddress1": "c@x.dk", "name": "c"}),
           ("K4", {"emailaddress1": "d@x.dk", "name": "D"}), ("K5", {"emailaddress1": "", "name": "E"})]
    groups = duplicate_groups(match_on, erp, crm)
    assert [(g.match, g.value, g.erp_keys, g.crm_keys) for g in groups] == [
        ("email=emailaddress1", "a@x.dk", ("C1", "C2"), ("K1",)),
        ("name=name", "E", ("C5", "C6"), ("K5",)),
    ]


def test_pairs_with_the_same_value_on_both_sides_are_no_duplicates() -> None:
    match_on = [MatchField(erp="email", crm="emailaddress1")]
    erp = [("C1", {"email": "a@x.dk"}), ("C2", {"email": "a@x.dk"})]
    crm = [("K1", {"emailaddress1": "a@x.dk"}), ("K2", {"emailaddress1": "A@x.dk"})]
    assert duplicate_groups(match_on, erp, crm) == []


def test_which_uncoupled_records_should_be_coupled() -> None:
    assert expects_coupling(False, None, T0)
    assert not expects_coupling(True, None, T0)
    assert expects_coupling(True, T0, T0 - timedelta(seconds=1))
    assert not expects_coupling(True, T0, T0 + timedelta(seconds=1))


def test_replay_events_are_exactly_what_the_model_writes() -> None:
    target = ReplayTarget(topic="t.erp.customer", system="erp", database="erp", schema="public", table="customer",
                          key_columns=("no",), run_id="run", job_id="job", mapping="CUSTOMER", create=False,
                          source_name="t.erp")
    row = {"no": "C1", "name": "Ærø ApS", "credit": Decimal("10.50"), "blocked": False, "modified_at": T0,
           "owner": None, "count": 3, "id": ACCOUNT}
    key, value = encode(target, row, 1234)
    model = ChangeEvent(
        op="r", before=None,
        after={"no": "C1", "name": "Ærø ApS", "credit": "10.5", "blocked": False, "modified_at": T0.isoformat(),
               "owner": None, "count": 3, "id": str(ACCOUNT)},
        source=Source(table="customer", db="erp", schema="public", snapshot="true", ts_ms=1234, name="t.erp"),
        ts_ms=1234, event_id="replay:run:CUSTOMER:erp:C1", system="erp",
        replay=ReplayInfo(run_id="run", job_id="job", mapping="CUSTOMER", create=False))
    assert value == model.to_wire()
    assert key == encode_key({"no": "C1"})
    parsed = ChangeEvent.from_wire(value)
    assert parsed is not None and parsed.replay is not None and parsed.replay.create is False
    assert json.loads(key) == {"no": "C1"}


def test_a_partition_is_processed_once_its_tracked_offset_is_past_the_last_replay() -> None:
    last = {("t", 0): 10, ("t", 1): 4, ("u", 0): 0}
    assert pending({("t", 0): 11, ("t", 1): 4, ("u", 0): 1}, last) == {("t", 1): 4}
    assert pending({("t", 0): 11, ("t", 1): 5, ("u", 0): 1}, last) == {}
    assert pending({}, last) == last
