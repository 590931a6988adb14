"""The sync's own write, read back as a change (a producer that reports no replication origin): recognised by the
coupling's fingerprint, whichever way the write went."""

from __future__ import annotations

import dataclasses

from consumers.decisions.echo import is_echo
from consumers.decisions.outcome import CouplingChange
from consumers.decisions.record import Situation, decide
from tests.unit.test_decisions import SHAPES, Coupling, change, crm_row, erp_row, mapping, synced


def written(coupling_change: CouplingChange) -> Coupling:
    """The coupling as the batch stores it after the decision."""
    return synced(erp_values=coupling_change.erp_values, crm_values=coupling_change.crm_values)


def test_a_crm_change_written_into_the_erp_comes_back_as_an_echo() -> None:
    m = mapping()
    user = decide(m, change("crm", name="Acme Ltd"), Situation(coupling=synced(), partner=erp_row()), SHAPES)
    (write,) = user.writes
    assert write.system == "erp" and write.values == {"name": "Acme Ltd"}
    assert user.coupling is not None
    stored = written(user.coupling)
    back = change("erp", **write.values)  # the ERP row as the sync left it, as Debezium reports it
    assert is_echo(m, back, stored)
    again = decide(m, back, Situation(coupling=stored, partner=crm_row(name="Acme Ltd")), SHAPES)
    assert again.verdict == "unchanged" and not again.writes  # the engine then counts it nowhere


def test_an_erp_change_written_into_the_crm_comes_back_as_an_echo() -> None:
    m = mapping()
    user = decide(m, change("erp", city="Bergen"), Situation(coupling=synced(), partner=crm_row()), SHAPES)
    assert user.coupling is not None and user.writes[0].values == {"city": "BERGEN"}
    assert is_echo(m, change("crm", city="BERGEN"), written(user.coupling))


def test_a_users_change_after_the_sync_is_not_an_echo() -> None:
    m = mapping()
    assert not is_echo(m, change("erp", name="Someone else"), synced())
    assert not is_echo(m, change("crm", credit="11"), synced())


def test_without_a_complete_fingerprint_nothing_is_taken_for_an_echo() -> None:
    m = mapping()
    assert is_echo(m, change("erp"), synced())
    assert not is_echo(m, change("erp"), None)
    partial = synced(erp_values={"no": "C1", "name": "Acme"})  # city and credit never recorded
    assert not is_echo(m, change("erp"), partial)
    deleted = dataclasses.replace(change("erp"), op="d")
    assert not is_echo(m, deleted, synced())
