"""A Debezium event parked behind a lookup is retried: it carries no `system` of ours, so the worker takes the system
it was parked for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from cdc.mapping.load import load_mapping_file
from cdc.settings import Settings
from cdc.state.parking import ParkedEvent
from consumers.incoming import Incoming
from consumers.worker import Worker
from tests.unit.debezium_records import record
from tests.unit.test_debezium_events import TABLES


def test_a_parked_debezium_event_is_retried_under_its_system() -> None:
    worker = Worker(Settings(), load_mapping_file(Settings().mapping_file))
    worker.links = {"erp": SimpleNamespace(tables=TABLES)}  # type: ignore[dict-item]
    value = record("customer-u").value
    assert value is not None
    payload = json.loads(value)["payload"]  # as the batch parks it: the event, without the envelope
    assert "system" not in payload
    now = datetime.now(UTC)
    parked = ParkedEvent(7, "CUSTOMER", "erp", "C00001", payload, "waiting", 1, now, now)
    item = worker._parked_item(parked)
    assert isinstance(item, Incoming), item
    assert (item.mapping.name, item.change.source, item.change.key, item.parked_id) == ("CUSTOMER", "erp", "C00001", 7)
