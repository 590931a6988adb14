"""The orchestrator's pure parts: the dependency-ordered plan, the watermark rules, the keep-creating choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdc.errors import ConfigError
from cdc.mapping.load import default_mapping_file
from cdc.orchestrator.full_sync import keep_creating_choice
from cdc.orchestrator.plan import plan, select
from cdc.orchestrator.watermarks import LatestSeen, advanced, replay_since

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_plan_follows_the_dependency_order_erp_side_first() -> None:
    steps = [(s.mapping.name, s.source, s.direction) for s in plan(default_mapping_file())]
    assert steps == [
        ("CURRENCY", "erp", "to_crm"),
        ("SALESPEOPLE", "crm", "to_erp"),
        ("UNITOFMEASURE", "erp", "to_crm"),
        ("CUSTOMER", "erp", "to_crm"), ("CUSTOMER", "crm", "to_erp"),
        ("CONTACTS", "erp", "to_crm"), ("CONTACTS", "crm", "to_erp"),
        ("RESOURCE-PRODUCT", "erp", "to_crm"), ("RESOURCE-PRODUCT", "crm", "to_erp"),
        ("ITEM-PRODUCT", "erp", "to_crm"), ("ITEM-PRODUCT", "crm", "to_erp"),
    ]


def test_a_mapping_comes_after_what_it_depends_on() -> None:
    names = [m.name for m in select(default_mapping_file())]
    for m in select(default_mapping_file()):
        for dependency in [*m.depends_on, *m.lookups]:
            if dependency != m.name:
                assert names.index(dependency) < names.index(m.name)


def test_one_mapping_or_a_clear_error() -> None:
    assert [s.label for s in plan(default_mapping_file(), "CUSTOMER")] == ["CUSTOMER ERP → CRM", "CUSTOMER CRM → ERP"]
    with pytest.raises(ConfigError, match="no mapping named 'CUSTOMERS'.*CUSTOMER"):
        plan(default_mapping_file(), "CUSTOMERS")


def test_without_a_watermark_or_in_a_full_sync_everything_is_replayed() -> None:
    assert replay_since(None, full=False) is None
    assert replay_since(T0, full=True) is None
    assert replay_since(T0, full=False) == T0


def test_the_watermark_moves_to_the_latest_modified_on_seen() -> None:
    start = T0 + timedelta(hours=1)
    assert advanced(None, T0, start) == T0
    assert advanced(T0 - timedelta(days=1), T0, start) == T0


def test_the_watermark_never_moves_past_the_job_start() -> None:
    start = T0 + timedelta(hours=1)
    assert advanced(None, start + timedelta(minutes=5), start) == start


def test_the_watermark_never_moves_back_and_stays_without_rows() -> None:
    assert advanced(T0, T0 - timedelta(hours=1), T0 + timedelta(hours=1)) is None
    assert advanced(T0, T0, T0 + timedelta(hours=1)) is None
    assert advanced(T0, None, T0 + timedelta(hours=1)) is None


def test_latest_seen_ignores_missing_values() -> None:
    seen = LatestSeen()
    for moment in (None, T0, T0 - timedelta(1), None, T0 + timedelta(1)):
        seen.see(moment)
    assert seen.value == T0 + timedelta(1)


@pytest.mark.parametrize(("flag", "interactive", "answer", "kept"), [
    (True, False, False, True), (False, True, True, False), (None, True, True, True), (None, True, False, False),
    (None, False, True, False),
])
def test_keep_creating_flag_then_question_then_restore(flag: bool | None, interactive: bool, answer: bool,
                                                       kept: bool) -> None:
    asked: list[bool] = []

    def ask() -> bool:
        asked.append(True)
        return answer

    assert keep_creating_choice(flag, interactive, ask) is kept
    assert asked == ([True] if flag is None and interactive else [])
