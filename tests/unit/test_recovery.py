"""Recovering interrupted writes: the pure parts (is the write there? what does a restored fingerprint change?)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from cdc.state.intents import Intent
from cdc.state.update_intents import UpdateIntent
from consumers.decisions.record import Situation, decide
from consumers.recovery import Recovery, _was_written, restorations
from tests.unit.test_decisions import SHAPES, change, crm_row, mapping, synced


def intent(**overrides: object) -> Intent:
    values: dict = dict(mapping="CUSTOMER", source="erp", source_key="C1", destination_key=crm_row()["id"],
                        kind="match", erp_values={"city": "Bergen"}, crm_values={"city": "BERGEN"},
                        writes={"crm": {"city": "BERGEN"}})
    values.update(overrides)
    return Intent(**values)  # type: ignore[arg-type]


def test_a_write_is_there_when_the_system_holds_its_values_in_canonical_form() -> None:
    rows = {"erp": {}, "crm": {crm_row()["id"]: crm_row(city="BERGEN")}}
    assert _was_written(intent(), rows)  # type: ignore[arg-type]
    numeric = intent(writes={"crm": {"credit": "12.5"}})
    assert _was_written(numeric, {"erp": {}, "crm": {crm_row()["id"]: crm_row(credit=Decimal("12.5000"))}})


def test_a_write_is_not_there_when_it_never_happened_or_the_record_is_gone() -> None:
    assert not _was_written(intent(), {"erp": {}, "crm": {crm_row()["id"]: crm_row(city="OSLO")}})
    assert not _was_written(intent(), {"erp": {}, "crm": {}})
    both = intent(writes={"crm": {"city": "BERGEN"}, "erp": {"name": "Acme AS"}})
    rows = {"erp": {"C1": {"no": "C1", "name": "Acme"}}, "crm": {crm_row()["id"]: crm_row(city="BERGEN")}}
    assert not _was_written(both, rows)  # type: ignore[arg-type]


def test_an_intent_is_dangling_until_this_batch_announces_or_handles_it() -> None:
    recovery = Recovery()
    left_behind = intent()
    assert recovery.dangling(left_behind)
    recovery.handled(left_behind)
    assert not recovery.dangling(left_behind)
    assert ("CUSTOMER", "erp", "C1") in recovery.forget
    assert recovery.dangling(dataclasses.replace(left_behind, kind="create")), "one intent per kind"


def update(erp_values: dict, crm_values: dict, writes: dict, position: int = 0) -> UpdateIntent:
    return UpdateIntent("C1", crm_row()["id"], writes, erp_values, crm_values, erp_position=position or None)


def test_interrupted_updates_are_restored_field_by_field_oldest_first() -> None:
    """Two batches died in a row on one pair: the first wrote the city, the second (its replay) the name. Both are
    known afterwards — the second announcement no longer hides the first — and a field a user changed since the
    write (the CRM no longer holds it) is not restored: that change's event decides."""
    first = update({"city": "Bergen", "name": "Acme"}, {"city": "BERGEN", "name": "Acme"},
                   {"crm": {"city": "BERGEN", "name": "Acme"}}, position=10)
    second = update({"name": "Acme 2"}, {"name": "Acme 2"}, {"crm": {"name": "Acme 2"}}, position=20)
    now = {"erp": {}, "crm": {crm_row()["id"]: crm_row(city="BERGEN", name="Acme 2")}}
    [restored] = restorations(mapping(), [first, second], now)  # type: ignore[arg-type]
    assert restored.erp_values == {"city": "Bergen", "name": "Acme 2"}
    assert restored.crm_values == {"city": "BERGEN", "name": "Acme 2"}
    assert restored.erp_position == 20
    changed_since = {"erp": {}, "crm": {crm_row()["id"]: crm_row(city="OSLO", name="Other")}}
    assert restorations(mapping(), [first, second], changed_since) == []  # type: ignore[arg-type]


def test_without_the_restored_fingerprint_a_change_back_looks_like_the_destinations_own_change() -> None:
    """City Oslo → Bergen written to the CRM, crash before the coupling; the ERP goes back to Oslo. On the old
    fingerprint the ERP equals what was synced, so the CRM's BERGEN passes for a CRM change: nothing is written,
    and no CRM event will ever come (the sync's writes are not captured)."""
    back = change("erp", city="Oslo")
    stale = decide(mapping(), back, Situation(coupling=synced(), partner=crm_row(city="BERGEN")), SHAPES)
    assert not stale.writes
    restored = synced(erp_values={**synced().erp_values, "city": "Bergen"},
                      crm_values={**synced().crm_values, "city": "BERGEN"})
    fixed = decide(mapping(), back, Situation(coupling=restored, partner=crm_row(city="BERGEN")), SHAPES)
    assert fixed.verdict == "applied" and fixed.writes[0].values == {"city": "OSLO"}
