"""Every page, the event stream, `/metrics` and `/readyz` rendered from canned snapshots (no services)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from cdc.instruments import observe_apply_latency
from cdc.monitoring import pages
from cdc.monitoring.app import create_app
from cdc.monitoring.health import assess
from cdc.monitoring.metrics import families
from cdc.settings import Settings
from tests.unit.monitoring_samples import StubCollector, snapshot


def _client(**kwargs) -> TestClient:  # type: ignore[no-untyped-def]
    collector = StubCollector(Settings(), snapshot(**kwargs))
    return TestClient(create_app(Settings(), collector=collector, sample_in_background=False),
                      base_url="http://127.0.0.1:8077")


@pytest.mark.parametrize("kafka_ok", [True, False])
def test_every_page_renders(kafka_ok: bool) -> None:
    with _client(kafka_ok=kafka_ok) as client:
        for path in ("/topics", "/capture", "/jobs", "/jobs/6f1c2d3e-0000-4000-8000-000000000001", "/errors",
                     "/mappings", "/record", "/record?system=crm&key=abc", "/errors?done=retry&error=7"):
            page = client.get(path)
            assert page.status_code in (200, 404), (path, page.text[:500])
            assert "<html" in page.text
        topics = client.get("/topics").text
        if kafka_ok:
            assert 'data-topic="t.erp.customer"' in topics and "not created" in topics
        else:
            assert "no broker answered" in topics
        assert "unreachable" in client.get("/capture").text
        assert "blocked ne &#39;all&#39;" in client.get("/mappings").text
        # The state database is down in these tests: the lists say so instead of failing.
        assert "not available in unit tests" in client.get("/jobs").text
        assert client.get("/jobs/not-a-uuid").status_code == 404


def test_done_messages_come_from_codes_only() -> None:
    with _client() as client:
        page = client.get("/errors?done=retry&error=<script>alert(1)</script>").text
        assert "<script>alert" not in page
        assert "Retried error #7" in client.get("/errors?done=retry&error=7").text


def test_event_stream_renders_the_live_part() -> None:
    with _client() as client:
        response = client.get("/events?page=topics&max=1")
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.text.split("\n\n") if block.startswith("event: update")]
        assert len(events) == 1
        data = json.loads(events[0].split("data: ", 1)[1])
        assert 'data-topic="t.erp.customer"' in data["html"]
        assert data["point"]["lag_total"] == 60
        assert "kafka" in data["status"]
        assert client.get("/events?page=nope").status_code == 404


def test_metrics_are_the_snapshot_numbers() -> None:
    observe_apply_latency(0.3)
    with _client() as client:
        text = client.get("/metrics").text
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for m in text_string_to_metric_families(text) for s in m.samples}
    assert found[("cdc_consumer_lag", (("partition", "0"), ("topic", "t.erp.customer")))] == 20
    assert found[("cdc_consumer_lag", (("partition", "1"), ("topic", "t.erp.customer")))] == 40
    assert ("cdc_consumer_lag", (("partition", "0"), ("topic", "t.dead-letter"))) not in found
    assert found[("cdc_dead_letter_messages", ())] == 3
    assert found[("cdc_capture_lag_bytes", (("system", "erp"),))] == 2048
    assert found[("cdc_capture_lag_seconds", (("system", "erp"),))] == 1.5
    assert ("cdc_capture_lag_bytes", (("system", "crm"),)) not in found  # unknown, not zero
    assert found[("cdc_events_processed_total", (("decision", "inserted"), ("mapping", "CUSTOMER")))] == 8
    assert found[("cdc_job_records", (("counter", "inserted"), ("kind", "full"), ("mapping", "CUSTOMER")))] == 5
    assert found[("cdc_errors_open", ())] == 1
    assert found[("cdc_service_up", (("service", "crm"),))] == 0
    assert found[("cdc_apply_latency_seconds_count", ())] >= 1


def test_metric_families_without_kafka() -> None:
    names = {m.name for m in families(snapshot(kafka_ok=False))}
    assert "cdc_consumer_lag" in names and "cdc_dead_letter_messages" not in names


def test_readiness() -> None:
    ready = assess(snapshot(), max_lag=100)
    assert not ready.ready and ready.consumer_lag == 60
    assert any("crm" in why for why in ready.reasons)
    assert [c.name for c in ready.checks] == ["kafka", "erp", "crm", "state", "consumer_lag"]
    for name, ok, detail in ready.checks:  # what `cdc check` prints
        assert isinstance(name, str) and isinstance(ok, bool) and detail
    healthy = snapshot().model_copy(update={"services": {name: check.model_copy(update={"ok": True, "error": None})
                                                         for name, check in snapshot().services.items()}})
    assert assess(healthy, max_lag=100).ready
    behind = assess(healthy, max_lag=59)
    assert not behind.ready and "60 messages behind" in behind.reasons[0]
    no_kafka = assess(snapshot(kafka_ok=False), max_lag=100)
    assert not no_kafka.ready and no_kafka.consumer_lag is None


def test_readyz_status_codes() -> None:
    with _client() as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["crm"]["ok"] is False
        assert response.json()["checks"]["crm"]["detail"] == "crm database: refused"


@pytest.mark.parametrize(("value", "text"), [
    (None, "–"), (0, "0"), (1234567, "1,234,567"), (2.5, "2.5"),
])
def test_fmt_number(value, text) -> None:
    assert pages.fmt_number(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "–"), (512, "512 B"), (2048, "2.0 KiB"), (5 * 1024 ** 3, "5.0 GiB"),
])
def test_fmt_bytes(value, text) -> None:
    assert pages.fmt_bytes(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "–"), (0.25, "0.2 s"), (42, "42 s"), (125, "2 min 5 s"), (7260, "2 h 1 min"), (90000, "1 d 1 h"),
])
def test_fmt_seconds(value, text) -> None:
    assert pages.fmt_seconds(value) == text


def test_grafana_dashboard_uses_exposed_metrics() -> None:
    path = Path(__file__).resolve().parents[2] / "compose" / "grafana" / "cdc-dashboard.json"
    dashboard = json.loads(path.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert queries and dashboard["uid"] == "cdc-sync"
    used = {name for q in queries for name in re.findall(r"\b(cdc_[a-z_]+)\b", q)}
    with _client() as client:
        exposed = {s.name for m in text_string_to_metric_families(client.get("/metrics").text) for s in m.samples}
    assert used <= exposed, used - exposed
    wanted = {"cdc_consumer_lag", "cdc_capture_lag_bytes", "cdc_capture_lag_seconds", "cdc_events_processed_total",
              "cdc_apply_latency_seconds_bucket", "cdc_errors_open"}
    assert wanted <= used


def test_apply_latency_from_other_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multiprocess mode: a worker process observes, the dashboard's /metrics serves it."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = "from cdc.instruments import observe_apply_latency as o; o(0.2); o(7.0)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with _client() as client:
        text = client.get("/metrics").text
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for m in text_string_to_metric_families(text) for s in m.samples}
    assert found[("cdc_apply_latency_seconds_count", ())] == 2
    assert found[("cdc_apply_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert found[("cdc_consumer_lag", (("partition", "0"), ("topic", "t.erp.customer")))] == 20


def test_record_pairs_show_current_and_synced_values() -> None:
    from decimal import Decimal

    from cdc.mapping.load import default_mapping_file
    from cdc.monitoring.records import RecordRow, pairs, show
    from cdc.state.couplings import Coupling

    customer = default_mapping_file().get("CUSTOMER")
    erp = RecordRow("erp", "customer", "no", "C1", row={"no": "C1", "name": "Acme", "credit_limit": Decimal("5.00")})
    crm = RecordRow("crm", "account", "accountid", "a-1", row={"name": "Acme BV", "creditlimit": None})
    coupling = Coupling("CUSTOMER", "C1", "a-1", erp_values={"name": "Acme"}, crm_values={"name": "Acme"})
    found = {p.erp_column: p for p in pairs(customer, erp, crm, coupling)}
    assert (found["name"].erp_value, found["name"].crm_value, found["name"].crm_synced) == ("Acme", "Acme BV", "Acme")
    assert show(found["credit_limit"].erp_value) == "5.00"
    assert show(found["credit_limit"].crm_value) == "NULL"
    assert show(found["city"].erp_synced) == ""  # not in the fingerprint: not NULL
    assert show(True) == "true" and show(b"xyz") == "<3 bytes>"
