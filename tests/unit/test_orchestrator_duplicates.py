"""Near-duplicate detection: normalised names, e-mails in another case or one character apart."""

from __future__ import annotations

import pytest

from cdc.orchestrator.duplicates import NearIndex, normalise, within_one_edit


def test_normalise_ignores_case_whitespace_and_punctuation() -> None:
    assert normalise("ACME  Corp. ") == normalise("acme corp") == "acmecorp"
    assert normalise("Müller & Söhne GmbH") == normalise("müller söhne gmbh")
    assert normalise(None) == ""


@pytest.mark.parametrize(("a", "b", "near"), [
    ("ann@x.dk", "ann@x.dk", True),
    ("ann@x.dk", "anm@x.dk", True),     # replaced
    ("ann@x.dk", "annn@x.dk", True),    # added
    ("ann@x.dk", "an@x.dk", True),      # removed
    ("ann@x.dk", "nan@x.dk", True),     # neighbours swapped
    ("ann@x.dk", "bob@x.dk", False),
    ("ann@x.dk", "anna@x.dk.eu", False),
    ("abcd", "badc", False),
])
def test_one_edit_apart(a: str, b: str, near: bool) -> None:
    assert within_one_edit(a, b) is near
    assert within_one_edit(b, a) is near


def index() -> NearIndex:
    near = NearIndex([("name", "name"), ("email", "emailaddress1")])
    for key, row in [
        ("A1", {"name": "ACME  Corp ", "emailaddress1": "sales@acme.example"}),
        ("A2", {"name": "Globex", "emailaddress1": "INFO@GLOBEX.EXAMPLE"}),
        ("A3", {"name": "Initech", "emailaddress1": "contact@initech.example"}),
        ("A4", {"name": "", "emailaddress1": None}),
    ]:
        near.add(key, row)
    return near


def test_near_by_name_ignoring_case_and_spaces() -> None:
    found = index().near({"name": "Acme Corp", "email": "other@elsewhere.example"})
    assert [(m.key, m.reason) for m in found] == [("A1", "name: same ignoring case, spaces and punctuation")]


def test_near_by_email_case_and_typo() -> None:
    near = index()
    assert [(m.key, m.reason) for m in near.near({"name": "G", "email": "info@globex.example"})] == [
        ("A2", "emailaddress1: same e-mail ignoring case")]
    assert [(m.key, m.reason) for m in near.near({"name": "I", "email": "contakt@initech.example"})] == [
        ("A3", "emailaddress1: e-mail one character apart")]


def test_nothing_near_and_exclusions() -> None:
    near = index()
    assert near.near({"name": "Umbrella", "email": "x@umbrella.example"}) == []
    assert near.near({"name": "", "email": ""}) == []
    assert near.near({"name": "acme corp", "email": None}, exclude={"A1"}) == []


def test_one_reason_per_record() -> None:
    found = index().near({"name": "acme corp", "email": "sales@acme.example"})
    assert [m.key for m in found] == ["A1"]
