"""The ERP/CRM pair: `System`, `other`, and `Pair[T]` (one value per system)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.pair import SYSTEMS, Pair, System, other

systems = st.sampled_from(SYSTEMS)
pairs = st.builds(Pair, st.integers(), st.integers())


def test_the_systems_and_their_order() -> None:
    assert SYSTEMS == ("erp", "crm")
    assert other("erp") == "crm" and other("crm") == "erp"


@given(pairs, systems)
def test_indexing_reads_the_named_side_and_other_the_opposite(pair: Pair[int], system: System) -> None:
    assert pair[system] == getattr(pair, system)
    assert pair.other(system) == pair[other(system)]
    assert {pair[system], pair.other(system)} == {pair.erp, pair.crm}


@given(pairs, systems)
def test_oriented_puts_mine_on_the_source_side(pair: Pair[int], source: System) -> None:
    oriented = Pair.oriented(source, pair.erp, pair.crm)
    assert oriented[source] == pair.erp and oriented.other(source) == pair.crm


def test_an_unknown_system_is_a_key_error_not_the_crm() -> None:
    with pytest.raises(KeyError):
        Pair(1, 2)["state"]  # type: ignore[index]


def test_a_pair_is_frozen_slotted_and_hashable() -> None:
    pair = Pair("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.erp = "c"  # type: ignore[misc]
    assert not hasattr(pair, "__dict__")
    assert hash(pair) == hash(Pair("a", "b"))
