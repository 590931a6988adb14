"""The decisions behind the mapping language's newer keys (docs/mappings.md), case by case, without I/O:
`on_lookup_failure` (wait, fail, clear), `after_match` (source, erp, crm, newest, none), `normalize`, and
`new_key: {strategy: series}`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.mapping import transforms
from cdc.mapping.model import FieldMapping, Lower, Normalisation, Title, Trim, Truncate, Upper
from consumers.decisions.keys import candidate_keys
from consumers.decisions.record import Situation, decide
from tests.unit.test_decisions import SHAPES, T0, change, crm_row, mapping, synced

OWNER = "0b6d1a7e-0000-4000-8000-0000000000aa"
OWNER_FIELD = {"erp": "owner", "crm": "ownerid", "lookup": "SALESPEOPLE"}


def with_owner(policy: str | None, **overrides: Any) -> Any:
    field = dict(OWNER_FIELD, **({"on_lookup_failure": policy} if policy else {}))
    return mapping(fields=[{"erp": "name", "crm": "name"}, {"erp": "city", "crm": "city"}, field], **overrides)


# -------------------------------------------------------------- on_lookup_failure

def test_wait_is_the_default_and_parks_the_change() -> None:
    d = decide(with_owner(None), change(owner="SP9"), Situation(sync_only_coupled=False), SHAPES)
    assert d.verdict == "parked" and d.waiting == (("SALESPEOPLE", "erp", "SP9"),) and not d.writes


def test_fail_fails_the_record_without_parking_it() -> None:
    d = decide(with_owner("fail"), change(owner="SP9"), Situation(sync_only_coupled=False), SHAPES)
    assert d.verdict == "failed" and d.counts == {"failed": 1} and not d.writes and not d.waiting
    assert "'SP9' is not coupled in SALESPEOPLE (on_lookup_failure: fail)" in d.error


def test_fail_on_a_coupled_record_marks_its_coupling_failed() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "Oslo", "owner": None},
                      crm_values={"name": "Acme", "city": "OSLO", "ownerid": None})
    d = decide(with_owner("fail"), change(owner="SP9", city="Bergen"),
               Situation(coupling=coupling, partner=crm_row()), SHAPES)
    assert d.verdict == "failed" and not d.writes and d.coupling is not None and d.coupling.failure


def test_clear_creates_the_record_without_the_field_and_keeps_it_to_carry_again() -> None:
    d = decide(with_owner("clear"), change(owner="SP9"), Situation(sync_only_coupled=False), SHAPES)
    assert d.verdict == "created"
    (write,) = d.writes
    assert write.values["ownerid"] is None and write.values["name"] == "Acme"
    assert d.coupling is not None and d.coupling.crm_values["ownerid"] is None
    assert "owner" not in d.coupling.erp_values, "the ERP value is not taken as synced: it is carried again"


def test_clear_writes_the_sides_default_when_the_mapping_gives_one() -> None:
    m = with_owner("clear", crm={**mapping().crm.model_dump(by_alias=True),
                                 "defaults": {"state": 0, "ownerid": OWNER}})
    d = decide(m, change(owner="SP9"), Situation(sync_only_coupled=False), SHAPES)
    assert d.writes[0].values["ownerid"] == OWNER


def test_a_cleared_field_is_written_once_the_lookup_resolves_on_the_next_change() -> None:
    m = with_owner("clear")
    first = decide(m, change(owner="SP9"), Situation(sync_only_coupled=False), SHAPES)
    stored = first.coupling
    assert stored is not None
    partner = crm_row(id=first.writes[0].key, city="Oslo", ownerid=None)
    # the next change of the record (another field), once SP9 is coupled
    d = decide(m, change(owner="SP9", city="Bergen"),
               Situation(coupling=synced(erp_key="C1", crm_key=stored.crm_key, erp_values=stored.erp_values,
                                         crm_values=stored.crm_values),
                         partner=partner, lookups={("SALESPEOPLE", "erp", "SP9"): OWNER}), SHAPES)
    assert d.verdict == "applied" and d.writes[0].values == {"city": "Bergen", "ownerid": OWNER}
    assert d.coupling is not None and d.coupling.erp_values["owner"] == "SP9"


def test_a_coupled_record_whose_lookup_fails_clears_the_field_and_keeps_carrying_it() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "Oslo", "owner": "SP1"},
                      crm_values={"name": "Acme", "city": "Oslo", "ownerid": OWNER})
    d = decide(with_owner("clear"), change(owner="SP9"),
               Situation(coupling=coupling, partner=crm_row(city="Oslo", ownerid=OWNER)), SHAPES)
    assert d.verdict == "applied" and writes_of(d) == {"crm": {"ownerid": None}}
    assert d.coupling is not None and "owner" not in d.coupling.erp_values
    assert d.coupling.crm_values["ownerid"] is None


def test_a_cleared_value_does_not_flow_back_over_the_source() -> None:
    """ERP → CRM cleared the owner; the CRM's next change must not carry its null back over the ERP's code."""
    m = with_owner("clear")
    coupling = synced(erp_values={"name": "Acme", "city": "Oslo"},
                      crm_values={"name": "Acme", "city": "Oslo", "ownerid": None})
    crm_change = change("crm", name="Acme CRM", city="Oslo", ownerid=None)
    d = decide(m, crm_change, Situation(coupling=coupling, partner={**change(owner="SP9").row}), SHAPES)
    assert d.verdict == "applied" and d.writes[0].system == "erp" and d.writes[0].values == {"name": "Acme CRM"}


def test_the_strictest_policy_of_the_fields_that_miss_decides() -> None:
    m = mapping(fields=[{"erp": "name", "crm": "name"},
                        dict(OWNER_FIELD, on_lookup_failure="clear"),
                        {"erp": "city", "crm": "number", "lookup": "SALESPEOPLE", "on_lookup_failure": "wait"}])
    parked = decide(m, change(owner="SP9", city="SP8"), Situation(sync_only_coupled=False), SHAPES)
    assert parked.verdict == "parked" and parked.waiting == (("SALESPEOPLE", "erp", "SP8"),)
    m = mapping(fields=[{"erp": "name", "crm": "name"},
                        dict(OWNER_FIELD, on_lookup_failure="fail"),
                        {"erp": "city", "crm": "number", "lookup": "SALESPEOPLE", "on_lookup_failure": "wait"}])
    assert decide(m, change(owner="SP9", city="SP8"), Situation(sync_only_coupled=False), SHAPES).verdict == "failed"


# -------------------------------------------------------------- after_match

def matched(policy: str, erp_time: Any = T0, crm_time: Any = T0) -> Any:
    m = mapping(after_match=policy, match_on=[{"erp": "no", "crm": "number"}],
                fields=[{"erp": "no", "crm": "number", "direction": "to_crm"}, {"erp": "name", "crm": "name"},
                        {"erp": "city", "crm": "city"}, {"erp": "credit", "crm": "credit", "direction": "to_erp"}])
    partner = crm_row(name="CRM name", city="Bergen", number="C1", credit="99", modifiedon=crm_time)
    return decide(m, change(name="ERP name", modified_at=erp_time),
                  Situation(sync_only_coupled=False, candidates=((partner,),)), SHAPES)


def writes_of(d: Any) -> dict[str, dict[str, Any]]:
    return {w.system: w.values for w in d.writes}


def test_after_a_match_the_side_that_found_it_prevails_by_default() -> None:
    d = matched("source")
    assert d.verdict == "coupled" and d.counts == {"coupled": 1, "modified": 1}
    assert writes_of(d) == {"crm": {"name": "ERP name", "city": "Oslo"}, "erp": {"credit": "99"}}


def test_after_a_match_the_crm_prevails_on_fields_both_sides_carry() -> None:
    d = matched("crm")
    assert d.verdict == "coupled" and d.counts == {"coupled": 1, "modified": 1}
    # both-ways fields take the CRM's values; a one-way field still flows its way (credit to the ERP)
    assert writes_of(d) == {"erp": {"name": "CRM name", "city": "Bergen", "credit": "99"}}
    assert d.coupling is not None
    assert d.coupling.erp_values["name"] == "CRM name" and d.coupling.crm_values["name"] == "CRM name"


def test_after_a_match_the_erp_prevails_also_when_the_crm_found_it() -> None:
    m = mapping(after_match="erp", match_on=[{"erp": "name", "crm": "name"}],
                fields=[{"erp": "name", "crm": "name"}, {"erp": "city", "crm": "city"}])
    crm_change = change("crm", city="Bergen")
    d = decide(m, crm_change, Situation(sync_only_coupled=False, candidates=((change(city="Oslo").row,),)), SHAPES)
    assert d.verdict == "coupled" and writes_of(d) == {"crm": {"city": "Oslo"}}


def test_after_a_match_the_newest_record_prevails() -> None:
    later = T0 + timedelta(minutes=5)
    assert writes_of(matched("newest", erp_time=T0, crm_time=later)) == {
        "erp": {"name": "CRM name", "city": "Bergen", "credit": "99"}}
    assert writes_of(matched("newest", erp_time=later, crm_time=T0)) == {
        "crm": {"name": "ERP name", "city": "Oslo"}, "erp": {"credit": "99"}}


def test_after_a_match_none_couples_and_writes_nothing_and_takes_both_as_synced() -> None:
    d = matched("none")
    assert d.verdict == "coupled" and d.counts == {"coupled": 1} and not d.writes
    assert d.coupling is not None
    assert d.coupling.erp_values["name"] == "ERP name" and d.coupling.crm_values["name"] == "CRM name"
    # the CRM's replay of the same record is then no change: nothing flows until a field changes
    again = decide(mapping(after_match="none", match_on=[{"erp": "no", "crm": "number"}],
                           fields=[{"erp": "no", "crm": "number", "direction": "to_crm"},
                                   {"erp": "name", "crm": "name"}, {"erp": "city", "crm": "city"},
                                   {"erp": "credit", "crm": "credit", "direction": "to_erp"}]),
                   change("crm", name="CRM name", city="Bergen", number="C1", credit="99"),
                   Situation(coupling=synced(erp_values=d.coupling.erp_values, crm_values=d.coupling.crm_values),
                             partner=change(name="ERP name").row), SHAPES)
    assert again.verdict == "unchanged" and not again.writes


def test_after_match_must_name_a_side_the_mapping_carries_from() -> None:
    with pytest.raises(ValueError, match="after_match crm: the mapping carries no values from the crm"):
        mapping(after_match="crm", direction="to_crm")


# -------------------------------------------------------------- normalize

def normalised(**overrides: Any) -> Any:
    return mapping(fields=[{"erp": "name", "crm": "name"},
                           {"erp": "city", "crm": "city", "normalize": [{"op": "trim"}, {"op": "upper"}]}],
                   **overrides)


def test_a_value_typed_unnormalised_is_written_normalised_both_ways() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "OSLO"}, crm_values={"name": "Acme", "city": "OSLO"})
    d = decide(normalised(), change(city=" bergen"), Situation(coupling=coupling, partner=crm_row(city="OSLO")),
               SHAPES)
    assert d.verdict == "applied"
    assert writes_of(d) == {"crm": {"city": "BERGEN"}, "erp": {"city": "BERGEN"}}
    assert d.coupling is not None
    assert d.coupling.erp_values["city"] == d.coupling.crm_values["city"] == "BERGEN"


def test_a_value_already_equal_once_normalised_is_still_written_back_to_its_own_side() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "OSLO"}, crm_values={"name": "Acme", "city": "OSLO"})
    d = decide(normalised(), change("crm", city="oslo"), Situation(coupling=coupling,
                                                                  partner=change(city="OSLO").row), SHAPES)
    assert writes_of(d) == {"crm": {"city": "OSLO"}}, "the CRM's own lower-case value is put right"


def test_a_normalised_value_is_not_written_again() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "OSLO"}, crm_values={"name": "Acme", "city": "OSLO"})
    d = decide(normalised(), change(city="OSLO"), Situation(coupling=coupling, partner=crm_row(city="OSLO")), SHAPES)
    assert d.verdict == "unchanged" and not d.writes


def test_a_creation_normalises_its_source_too() -> None:
    d = decide(normalised(), change(city="  oslo "), Situation(sync_only_coupled=False), SHAPES)
    assert writes_of(d)["crm"]["city"] == "OSLO" and writes_of(d)["erp"] == {"city": "OSLO"}
    assert d.coupling is not None and d.coupling.erp_values["city"] == "OSLO"


def test_a_conflict_left_unresolved_normalises_nothing() -> None:
    coupling = synced(erp_values={"name": "Acme", "city": "OSLO"}, crm_values={"name": "Acme", "city": "OSLO"})
    d = decide(normalised(conflict="fail"), change(city="bergen"),
               Situation(coupling=coupling, partner=crm_row(city="ROME")), SHAPES)
    assert d.verdict == "conflict" and not d.writes


@pytest.mark.parametrize("field", [
    {"erp": "city", "crm": "city", "normalize": [{"op": "upper"}], "to_crm": [{"op": "trim"}]},
    {"erp": "city", "crm": "city", "normalize": [{"op": "upper"}], "value_map": {"a": "b"}},
    {"erp": "city", "crm": "ownerid", "normalize": [{"op": "upper"}], "lookup": "X"},
    {"erp": "city", "crm": "city", "normalize": [{"op": "replace", "old": "a", "new": "aa"}]},
])
def test_normalize_takes_plain_fields_and_transforms_that_settle(field: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FieldMapping.model_validate(field)


STEPS: st.SearchStrategy[list[Normalisation]] = st.lists(st.sampled_from(
    [Trim(op="trim"), Upper(op="upper"), Lower(op="lower"), Title(op="title"), Truncate(op="truncate", length=2),
     Truncate(op="truncate", length=3)]), max_size=4)


@given(steps=STEPS, text=st.text(max_size=6))
def test_a_normalised_value_normalises_to_itself(steps: list[Normalisation], text: str) -> None:
    once = transforms.normalise(steps, text)
    assert transforms.normalise(steps, once) == once


# -------------------------------------------------------------- new_key: series

def series(**overrides: Any) -> Any:
    spec: dict[str, Any] = {"erp": {"table": "customer", "key": "no", "modified_on": "modified_at",
                                    "new_key": {"strategy": "series"}}}
    return mapping(**{**spec, **overrides})


def test_a_series_creation_asks_for_a_key_before_it_writes_anything() -> None:
    d = decide(series(), change("crm", name="Beta"), Situation(sync_only_coupled=False), SHAPES)
    assert d.needs_key and d.verdict == "created" and not d.writes and d.coupling is None and not d.counted


def test_a_series_creation_takes_the_allocated_key_everywhere() -> None:
    m = series(fields=[{"erp": "no", "crm": "number", "direction": "to_crm"}, {"erp": "name", "crm": "name"}])
    d = decide(m, change("crm", name="Beta"), Situation(sync_only_coupled=False, allocated="C00042"), SHAPES)
    assert d.verdict == "created" and d.partner_key == "C00042" and not d.needs_key
    assert writes_of(d) == {"erp": {"no": "C00042", "name": "Beta"}, "crm": {"number": "C00042"}}
    assert d.coupling is not None and d.coupling.erp_key == "C00042"


def test_a_series_creation_announced_before_a_crash_reuses_its_announced_key() -> None:
    situation = Situation(sync_only_coupled=False, intent="C00041")
    d = decide(series(), change("crm", name="Beta"), situation, SHAPES)
    assert not d.needs_key and d.partner_key == "C00041" and d.writes[0].key == "C00041"


def test_a_series_key_some_record_holds_is_taken() -> None:
    situation = Situation(sync_only_coupled=False, allocated="C00042", taken_keys=frozenset({"C00042"}))
    d = decide(series(), change("crm", name="Beta"), situation, SHAPES)
    assert d.verdict == "failed" and "taken" in d.reason and not d.writes


def test_a_series_that_gives_no_key_fails_the_creation_with_the_reason() -> None:
    situation = Situation(sync_only_coupled=False, allocation_failed="no key: permission denied for sequence")
    d = decide(series(), change("crm", name="Beta"), situation, SHAPES)
    assert d.verdict == "failed" and d.error == "no key: permission denied for sequence"


def test_a_series_side_has_no_derived_keys_and_a_match_needs_none() -> None:
    m = series(match_on=[{"erp": "name", "crm": "name"}])
    assert candidate_keys(m, m.erp, "varchar", 20, "x", {}) == []
    d = decide(m, change("crm", name="Acme"), Situation(sync_only_coupled=False, candidates=((change().row,),)),
               SHAPES)
    assert d.verdict == "coupled" and not d.needs_key


@pytest.mark.parametrize("key", [{"prefix": "V"}, {"length": 8}, {"field": "no"}])
def test_series_takes_nothing_a_derived_key_takes(key: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="strategy series takes no"):
        series(erp={"table": "customer", "key": "no", "modified_on": "modified_at",
                    "new_key": {"strategy": "series", **key}})

