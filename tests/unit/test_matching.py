"""The match rule, written once (`consumers.decisions.matching`): the worker's candidates and verify's duplicates
read a record's match fields the same way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.mapping.model import MatchField
from consumers import MATCH_SEPARATOR, match_key, match_texts
from consumers.decisions.matching import match_values

TEXT = st.text(st.characters(blacklist_characters=MATCH_SEPARATOR, blacklist_categories=("Cs",)), max_size=8)
VALUES = st.one_of(st.none(), TEXT, st.integers(), st.booleans(), st.dates(),
                   st.decimals(allow_nan=False, allow_infinity=False, places=2))


def fields(flags: list[bool]) -> list[MatchField]:
    return [MatchField(erp=f"e{i}", crm=f"c{i}", case_sensitive=flag) for i, flag in enumerate(flags)]


def test_a_field_is_read_from_its_own_systems_column_as_canonical_text() -> None:
    match_on = fields([False, False, True])
    row = {"e0": Decimal("1.50"), "e1": dt.date(2024, 5, 1), "e2": "Acme", "c0": "other"}
    assert match_texts(match_on, "erp", row) == ("1.5", "2024-05-01", "Acme")
    assert match_key(match_on, "erp", row) == MATCH_SEPARATOR.join(["1.5", "2024-05-01", "Acme"])


@pytest.mark.parametrize("empty", [None, "", "missing"])
def test_a_record_with_an_empty_match_field_matches_nothing(empty: Any) -> None:
    match_on = fields([False, False])
    row = {"c0": "Acme"} | ({} if empty == "missing" else {"c1": empty})
    assert match_texts(match_on, "crm", row) is None
    assert match_key(match_on, "crm", row) is None


def test_case_is_ignored_unless_the_field_says_otherwise() -> None:
    assert match_key(fields([False]), "erp", {"e0": "ACME"}) == match_key(fields([False]), "crm", {"c0": "acme"})
    assert match_key(fields([True]), "erp", {"e0": "ACME"}) != match_key(fields([True]), "crm", {"c0": "acme"})
    assert match_texts(fields([False]), "erp", {"e0": "ACME"}) == ("ACME",)  # PostgreSQL folds the worker's case


def _worker_agrees(match_on: list[MatchField], source: tuple[str, ...] | None,
                   destination: tuple[str, ...] | None) -> bool:
    """The worker's candidate condition (consumers.situation.find_candidates) read in Python: each field's text
    equal, through lower() where the field ignores case."""
    if source is None or destination is None:
        return False
    return all(s == d if f.case_sensitive else s.lower() == d.lower()
               for f, s, d in zip(match_on, source, destination, strict=True))


@given(st.lists(st.tuples(st.booleans(), VALUES, VALUES), min_size=1, max_size=3), st.data())
def test_verify_groups_two_records_together_exactly_when_the_worker_would_match_them(
        columns: list[tuple[bool, Any, Any]], data: st.DataObject) -> None:
    match_on = fields([flag for flag, _, _ in columns])
    erp = {f"e{i}": value for i, (_, value, _) in enumerate(columns)}
    crm = {f"c{i}": value for i, (_, _, value) in enumerate(columns)}
    if data.draw(st.booleans()):  # often the same values, case changed on some
        crm = {f"c{i}": data.draw(st.sampled_from([v, v.upper(), v.lower()])) if isinstance(v, str) else v
               for i, (_, v, _) in enumerate(columns)}
    erp_key, crm_key = match_key(match_on, "erp", erp), match_key(match_on, "crm", crm)
    worker = _worker_agrees(match_on, match_texts(match_on, "erp", erp), match_texts(match_on, "crm", crm))
    assert (erp_key is not None and erp_key == crm_key) == worker
    assert (erp_key is None) == (match_texts(match_on, "erp", erp) is None)


def test_a_column_matched_by_value_gets_the_value_of_its_type() -> None:
    amount = MatchField(erp="amount", crm="amount")
    moment = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
    assert match_values([amount], "erp", {"amount": Decimal("1.5")}, ["numeric"]) == (Decimal("1.5"),)
    assert match_values([MatchField(erp="t", crm="t")], "erp", {"t": moment}, ["timestamptz"]) == (moment,)
    assert match_values([amount], "erp", {"amount": Decimal("1.5")}, ["text"]) == ("1.5",)  # text: the text


def test_a_text_that_is_no_value_of_the_same_canonical_text_matches_nothing() -> None:
    """`match_key` compares canonical texts: '01' is not 1, '1.5' is not an integer — no look-up finds them."""
    no = MatchField(erp="no", crm="no", case_sensitive=True)
    assert match_values([no], "erp", {"no": "01"}, ["int4"]) is None
    assert match_values([no], "erp", {"no": "1.5"}, ["int4"]) is None
    assert match_values([no], "erp", {"no": "1"}, ["int4"]) == (1,)
    assert match_values([no], "erp", {"no": ""}, ["int4"]) is None
