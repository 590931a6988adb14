"""The decision rules, case by case, without Kafka or a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cdc.mapping.model import MappingFile, TableMapping
from consumers.decisions.keys import candidate_keys
from consumers.decisions.record import Change, Shapes, Situation, decide


@dataclass(frozen=True)
class Col:
    type_name: str
    max_length: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class Shape:
    columns: dict[str, Col]


@dataclass(frozen=True)
class Coupling:
    erp_key: str
    crm_key: str
    erp_values: dict[str, Any] | None = None
    crm_values: dict[str, Any] | None = None
    erp_position: int | None = None
    crm_position: int | None = None
    skipped: bool = False
    failure_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


ERP = Shape({"no": Col("varchar", 20), "name": Col("varchar", 30), "city": Col("varchar", 30),
             "blocked": Col("bool"), "credit": Col("numeric"), "owner": Col("varchar", 20),
             "modified_at": Col("timestamptz")})
CRM = Shape({"id": Col("uuid"), "name": Col("varchar", 10), "city": Col("varchar", 30), "state": Col("int4"),
             "credit": Col("numeric"), "kind": Col("int4"), "ownerid": Col("uuid"), "number": Col("varchar", 20),
             "modifiedon": Col("timestamptz")})
SHAPES = Shapes(ERP, CRM, erp_key_type="varchar", crm_key_type="uuid", erp_key_length=20)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def mapping(**overrides: Any) -> TableMapping:
    spec: dict[str, Any] = {
        "name": "CUSTOMER",
        "direction": "both",
        "sync_only_coupled": False,
        "conflict": "fail",
        "deletion": "uncouple",
        "erp": {"table": "customer", "key": "no", "modified_on": "modified_at",
                "filter": {"field": "blocked", "op": "eq", "value": False},
                "new_key": {"strategy": "code", "prefix": "C", "length": 10}},
        "crm": {"table": "account", "key": "id", "modified_on": "modifiedon",
                "filter": {"field": "state", "op": "eq", "value": 0}, "defaults": {"state": 0, "kind": 3}},
        "fields": [
            {"erp": "no", "crm": "number", "direction": "to_crm"},
            {"erp": "name", "crm": "name"},
            {"erp": "city", "crm": "city", "to_crm": [{"op": "upper"}]},
            {"erp": "credit", "crm": "credit"},
            {"crm": "kind", "constant": 3},
        ],
    }
    spec.update(overrides)
    other = {"name": "SALESPEOPLE", "direction": "to_erp",
             "erp": {"table": "sp", "key": "code", "modified_on": "m"},
             "crm": {"table": "su", "key": "id", "modified_on": "m"},
             "fields": [{"erp": "name", "crm": "name", "direction": "to_erp"}]}
    return MappingFile.model_validate({"mappings": [spec, other]}).get("CUSTOMER")


def erp_row(**values: Any) -> dict[str, Any]:
    row = {"no": "C1", "name": "Acme", "city": "Oslo", "blocked": False, "credit": Decimal("10.00"),
           "owner": None, "modified_at": T0}
    row.update(values)
    return row


def crm_row(**values: Any) -> dict[str, Any]:
    row = {"id": "6a1f0c9e-0000-4000-8000-000000000001", "name": "Acme", "city": "OSLO", "state": 0,
           "credit": Decimal("10.0000"), "kind": 3, "number": "C1", "modifiedon": T0}
    row.update(values)
    return row


def synced(**overrides: Any) -> Coupling:
    """A coupling whose fingerprints say both sides were equal to erp_row()/crm_row() at the last sync."""
    values: dict[str, Any] = {
        "erp_key": "C1", "crm_key": crm_row()["id"],
        "erp_values": {"no": "C1", "name": "Acme", "city": "Oslo", "credit": "10"},
        "crm_values": {"number": "C1", "name": "Acme", "city": "OSLO", "credit": "10", "kind": 3},
    }
    values.update(overrides)
    return Coupling(**values)


def change(system: str = "erp", op: str = "u", **values: Any) -> Change:
    row = erp_row(**values) if system == "erp" else crm_row(**values)
    key = row["no"] if system == "erp" else row["id"]
    return Change(system, op, key, row, position=100, modified_on=row.get("modified_at") or row.get("modifiedon"))


# -------------------------------------------------------------- scope: direction and filters

def test_outside_the_filter_is_ignored_and_not_counted() -> None:
    d = decide(mapping(), change(blocked=True), Situation(), SHAPES)
    assert d.verdict == "ignored" and not d.counted and not d.writes


def test_direction_not_allowing_the_source_is_ignored() -> None:
    d = decide(mapping(direction="to_erp"), change("erp"), Situation(), SHAPES)
    assert d.verdict == "ignored" and not d.counted


# -------------------------------------------------------------- uncoupled

def test_uncoupled_with_sync_only_coupled_is_skipped_and_counted() -> None:
    d = decide(mapping(), change(), Situation(sync_only_coupled=True), SHAPES)
    assert d.verdict == "skipped" and d.counts == {"skipped": 1} and not d.writes


def test_uncoupled_without_match_fields_is_created_with_defaults_and_coupled() -> None:
    d = decide(mapping(), change(), Situation(sync_only_coupled=False), SHAPES)
    assert d.verdict == "created" and d.counts == {"inserted": 1}
    (write,) = d.writes
    assert write.system == "crm" and write.kind == "insert"
    assert write.values["name"] == "Acme" and write.values["city"] == "OSLO"
    assert write.values["state"] == 0 and write.values["kind"] == 3 and write.values["number"] == "C1"
    assert write.values["id"] == write.key
    assert d.coupling is not None and d.coupling.erp_key == "C1" and d.coupling.crm_key == write.key


def test_created_keys_are_deterministic_so_a_replayed_create_lands_on_the_same_row() -> None:
    first = decide(mapping(), change(), Situation(sync_only_coupled=False), SHAPES)
    again = decide(mapping(), change(), Situation(sync_only_coupled=False), SHAPES)
    assert first.writes[0].key == again.writes[0].key


def test_created_erp_key_follows_the_code_strategy_and_avoids_taken_keys() -> None:
    crm = change("crm", name="Beta", city="Rome")
    first = decide(mapping(), crm, Situation(sync_only_coupled=False), SHAPES)
    key = first.writes[0].key
    assert key.startswith("C") and len(key) == 10
    other = decide(mapping(), crm, Situation(sync_only_coupled=False, taken_keys=frozenset({key})), SHAPES)
    assert other.verdict == "created" and other.writes[0].key != key and other.writes[0].key.startswith("C")
    every = frozenset(candidate_keys(mapping(), mapping().erp, "varchar", 20, crm.key, crm.row))
    blocked = decide(mapping(), crm, Situation(sync_only_coupled=False, taken_keys=every), SHAPES)
    assert blocked.verdict == "failed" and not blocked.writes


def test_a_creation_announced_but_never_written_is_made_on_the_announced_key() -> None:
    crm = change("crm", name="Beta", city="Rome")
    situation = Situation(sync_only_coupled=False, intent="C-ANNOUNCED")
    decision = decide(mapping(), crm, situation, SHAPES)
    assert decision.verdict == "created" and decision.writes[0].key == "C-ANNOUNCED"
    assert decision.coupling is not None and decision.coupling.erp_key == "C-ANNOUNCED"


def test_text_longer_than_the_destination_is_truncated() -> None:
    d = decide(mapping(), change(name="A very long company name"), Situation(sync_only_coupled=False), SHAPES)
    assert d.writes[0].values["name"] == "A very lon"


def test_exactly_one_match_couples_then_updates() -> None:
    m = mapping(match_on=[{"erp": "name", "crm": "name"}])
    partner = crm_row(city="Bergen")
    d = decide(m, change(), Situation(sync_only_coupled=False, candidates=((partner,),)), SHAPES)
    assert d.verdict == "coupled" and d.counts == {"coupled": 1, "modified": 1}
    (write,) = d.writes
    assert write.kind == "update" and write.key == partner["id"] and write.values == {"city": "OSLO"}


def test_several_matches_are_an_error_never_a_guess() -> None:
    m = mapping(match_on=[{"erp": "name", "crm": "name"}])
    a, b = crm_row(), crm_row(id="6a1f0c9e-0000-4000-8000-000000000002")
    d = decide(m, change(), Situation(sync_only_coupled=False, candidates=((a, b),)), SHAPES)
    assert d.verdict == "failed" and d.counts == {"failed": 1} and not d.writes and d.coupling is None


def test_no_match_in_first_priority_falls_through_to_the_next() -> None:
    m = mapping(match_on=[{"erp": "name", "crm": "name", "priority": 1},
                          {"erp": "city", "crm": "city", "priority": 2}])
    partner = crm_row(name="Acme AS")
    d = decide(m, change(), Situation(sync_only_coupled=False, candidates=((), (partner,))), SHAPES)
    assert d.verdict == "coupled" and d.writes[0].values == {"name": "Acme"}


def test_a_lookup_to_an_uncoupled_record_parks_the_change() -> None:
    m = mapping(fields=[{"erp": "name", "crm": "name"},
                        {"erp": "owner", "crm": "ownerid", "lookup": "SALESPEOPLE"}])
    d = decide(m, change(owner="SP1"), Situation(sync_only_coupled=False), SHAPES)
    assert d.verdict == "parked" and "SP1" in d.reason and not d.counted


def test_a_resolved_lookup_carries_the_partner_key() -> None:
    m = mapping(fields=[{"erp": "name", "crm": "name"},
                        {"erp": "owner", "crm": "ownerid", "lookup": "SALESPEOPLE"}])
    owner = "0b6d1a7e-0000-4000-8000-0000000000aa"
    d = decide(m, change(owner="SP1"), Situation(sync_only_coupled=False,
                                                 lookups={("SALESPEOPLE", "erp", "SP1"): owner}), SHAPES)
    assert d.writes[0].values["ownerid"] == owner


# -------------------------------------------------------------- coupled

def test_source_change_writes_only_the_differing_fields() -> None:
    d = decide(mapping(), change(city="Bergen"), Situation(coupling=synced(), partner=crm_row()), SHAPES)
    assert d.verdict == "applied" and d.counts == {"modified": 1}
    (write,) = d.writes
    assert write.kind == "update" and write.values == {"city": "BERGEN"}
    assert d.coupling is not None and d.coupling.erp_values["city"] == "Bergen"
    assert d.coupling.crm_values["city"] == "BERGEN"


def test_nothing_differing_is_unchanged() -> None:
    d = decide(mapping(), change(), Situation(coupling=synced(), partner=crm_row()), SHAPES)
    assert d.verdict == "unchanged" and d.counts == {"unchanged": 1} and not d.writes


def test_numbers_of_different_scale_are_equal() -> None:
    d = decide(mapping(), change(credit=Decimal("10.0")), Situation(coupling=synced(), partner=crm_row()), SHAPES)
    assert d.verdict == "unchanged"


def test_the_destinations_own_pending_change_is_not_overwritten() -> None:
    # The CRM changed the name since the last sync; the ERP changed only the city.
    d = decide(mapping(), change(city="Bergen"), Situation(coupling=synced(), partner=crm_row(name="Acme CRM")),
               SHAPES)
    assert d.writes[0].values == {"city": "BERGEN"}
    assert d.coupling is not None and d.coupling.crm_values["name"] == "Acme"  # still pending for its own event


def test_a_stale_change_is_unchanged() -> None:
    d = decide(mapping(), change(city="Old"), Situation(coupling=synced(erp_position=500), partner=crm_row()),
               SHAPES)
    assert d.verdict == "unchanged" and not d.writes


def test_skipped_coupling_is_skipped_until_retried() -> None:
    situation = Situation(coupling=synced(skipped=True), partner=crm_row())
    assert decide(mapping(), change(city="X"), situation, SHAPES).verdict == "skipped"
    retried = Situation(coupling=synced(skipped=True), partner=crm_row(), retry=True)
    assert decide(mapping(), change(city="X"), retried, SHAPES).verdict == "applied"


# -------------------------------------------------------------- conflicts

def both_changed_name(policy: str, erp_time: datetime = T0, crm_time: datetime = T0) -> Any:
    m = mapping(conflict=policy)
    c = change(name="ERP name", modified_at=erp_time)
    partner = crm_row(name="CRM name", modifiedon=crm_time)
    return decide(m, c, Situation(coupling=synced(), partner=partner), SHAPES)


def test_conflict_fail_records_an_error_and_writes_nothing() -> None:
    d = both_changed_name("fail")
    assert d.verdict == "conflict" and d.counts == {"failed": 1} and not d.writes
    assert d.coupling is not None and d.coupling.failure and "name" in d.error


def test_conflict_source_side_wins() -> None:
    d = both_changed_name("erp-wins")
    assert d.verdict == "applied" and d.writes[0].system == "crm" and d.writes[0].values == {"name": "ERP name"}


def test_conflict_other_side_wins_writes_back_to_the_source() -> None:
    d = both_changed_name("crm-wins")
    assert d.verdict == "applied"
    (write,) = d.writes
    assert write.system == "erp" and write.key == "C1" and write.values == {"name": "CRM name"}
    assert d.coupling is not None and d.coupling.erp_values["name"] == "CRM name"


def test_conflict_newest_wins_by_modified_on() -> None:
    newer_crm = both_changed_name("newest-wins", erp_time=T0, crm_time=T0 + timedelta(seconds=5))
    assert newer_crm.writes[0].system == "erp" and newer_crm.writes[0].values == {"name": "CRM name"}
    newer_erp = both_changed_name("newest-wins", erp_time=T0 + timedelta(seconds=5), crm_time=T0)
    assert newer_erp.writes[0].system == "crm" and newer_erp.writes[0].values == {"name": "ERP name"}


def test_conflict_fail_fails_the_whole_record_even_fields_only_one_side_changed() -> None:
    m = mapping(conflict="fail")
    d = decide(m, change(name="ERP name", city="Bergen"),
               Situation(coupling=synced(), partner=crm_row(name="CRM name")), SHAPES)
    assert d.verdict == "conflict" and d.counts == {"failed": 1} and not d.writes and "name" in d.error
    assert d.coupling is not None and d.coupling.failure
    assert d.coupling.erp_values == synced().erp_values, "the fingerprints stay as last synced"


def test_merge_applies_non_overlapping_changes_and_reports_the_overlap() -> None:
    m = mapping(conflict="merge")
    c = change(name="ERP name", city="Bergen")
    d = decide(m, c, Situation(coupling=synced(), partner=crm_row(name="CRM name")), SHAPES)
    assert d.verdict == "conflict" and d.writes[0].values == {"city": "BERGEN"} and "name" in d.error


def test_changes_to_one_way_fields_are_not_conflicts() -> None:
    m = mapping(fields=[{"erp": "name", "crm": "name", "direction": "to_crm"}, {"crm": "kind", "constant": 3}])
    c = change(name="ERP name")
    coupling = synced(erp_values={"name": "Acme"}, crm_values={"name": "Acme", "kind": 3})
    d = decide(m, c, Situation(coupling=coupling, partner=crm_row(name="CRM name")), SHAPES)
    assert d.verdict == "applied" and d.writes[0].values == {"name": "ERP name"}


# -------------------------------------------------------------- deletes

def deleted(policy: str, direction: str = "both", partner: dict[str, Any] | None = None) -> Any:
    m = mapping(deletion=policy, direction=direction)
    c = change(op="d")
    return decide(m, c, Situation(coupling=synced(), partner=partner), SHAPES)


def test_delete_propagate_deletes_the_partner() -> None:
    d = deleted("propagate")
    assert d.verdict == "deleted" and d.counts == {"deleted": 1}
    assert d.writes[0].kind == "delete" and d.writes[0].system == "crm" and d.coupling.remove


def test_delete_uncouple_keeps_the_partner() -> None:
    d = deleted("uncouple")
    assert d.verdict == "uncoupled" and not d.writes and d.coupling.remove and d.counts == {"uncoupled": 1}


def test_delete_restore_recreates_the_record_from_its_partner() -> None:
    d = deleted("restore", partner=crm_row(name="Kept"))
    assert d.verdict == "restored" and d.counts == {"inserted": 1}
    (write,) = d.writes
    assert write.system == "erp" and write.kind == "insert" and write.key == "C1" and write.values["name"] == "Kept"


def test_delete_fail_records_an_error() -> None:
    d = deleted("fail")
    assert d.verdict == "failed" and d.error and not d.writes and d.coupling.failure


def test_delete_of_an_uncoupled_record_is_ignored() -> None:
    d = decide(mapping(deletion="propagate"), change(op="d"), Situation(), SHAPES)
    assert d.verdict == "ignored" and not d.counted


def test_coupled_partner_gone_with_restore_recreates_it_under_the_same_key() -> None:
    m = mapping(deletion="restore")
    d = decide(m, change(city="Bergen"), Situation(coupling=synced(), partner=None), SHAPES)
    assert d.verdict == "restored" and d.writes[0].key == synced().crm_key and d.writes[0].kind == "insert"


def test_coupled_partner_gone_with_uncouple_uncouples() -> None:
    d = decide(mapping(deletion="uncouple"), change(city="X"), Situation(coupling=synced(), partner=None), SHAPES)
    assert d.verdict == "uncoupled" and d.coupling.remove


def test_coupled_partner_gone_with_propagate_waits_for_the_partners_delete_event() -> None:
    d = decide(mapping(deletion="propagate"), change(city="X"), Situation(coupling=synced(), partner=None), SHAPES)
    assert d.verdict == "ignored" and d.coupling is None and not d.writes and not d.counted


def test_a_record_created_from_the_crm_gets_back_what_only_the_erp_decides() -> None:
    # "no -> number" flows to the CRM only: the ERP key made for the new customer is written back to the account.
    d = decide(mapping(), change("crm", number="", name="Beta"), Situation(sync_only_coupled=False), SHAPES)
    insert, back = d.writes
    assert insert.system == "erp" and back.system == "crm" and back.kind == "update"
    assert back.values == {"number": insert.key}
    assert d.coupling.crm_values["number"] == insert.key


def test_a_match_from_the_crm_side_also_gets_the_erp_only_fields() -> None:
    m = mapping(match_on=[{"erp": "name", "crm": "name"}])
    d = decide(m, change("crm", number=""), Situation(sync_only_coupled=False, candidates=((erp_row(),),)), SHAPES)
    assert d.verdict == "coupled"
    assert any(w.system == "crm" and w.values == {"number": "C1"} for w in d.writes)
