"""Issue #19, items 7 and 9 on the dashboard: bounded, validated parameters (a page or a 4xx, never a 500), and a
CSRF token bound to this dashboard process — a cookie someone planted is not one."""

from __future__ import annotations

import re

from pydantic import SecretStr
from starlette.testclient import TestClient

from cdc.monitoring import security
from cdc.monitoring.app import create_app
from cdc.settings import Settings
from tests.unit.monitoring_samples import StubCollector

LOCAL = "http://127.0.0.1:8077"


def _client() -> tuple[TestClient, StubCollector]:
    settings = Settings(pg_password=SecretStr("Very-Secret-pw9"))
    collector = StubCollector(settings)
    app = create_app(settings, collector=collector, sample_in_background=False)
    return TestClient(app, base_url=LOCAL, follow_redirects=False, raise_server_exceptions=False), collector


def test_odd_numbers_in_query_strings_get_a_page_or_a_4xx() -> None:
    client, _ = _client()
    with client:
        for path in ("/errors?n=²", f"/errors?n={'9' * 5000}", "/errors?done=retry&n=-3&error=²",
                     "/jobs?limit=²", f"/jobs?limit={'9' * 5000}", "/api/history?seconds=nan",
                     "/api/history?seconds=1e400"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        for value in ("²", "9" * 5000, "-1", "x"):
            assert client.get(f"/events?page=topics&max={value}").status_code == 400, value
        assert client.get("/events?page=topics&max=1").status_code == 200


def test_an_error_id_beyond_int64_is_not_found_without_asking_the_database() -> None:
    client, collector = _client()
    with client:
        page = client.get("/errors")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        collector.result = []
        collector.calls.clear()
        for action in ("retry", "skip"):
            for ident in ("9" * 30, str(2**63)):
                response = client.post(f"/errors/{ident}/{action}", data={"csrf": csrf})
                assert response.status_code == 404, (action, ident, response.status_code)
        assert collector.calls == []
        assert client.post(f"/errors/{2**63 - 1}/retry", data={"csrf": csrf}).status_code == 303


def test_a_planted_csrf_cookie_does_not_pass() -> None:
    client, collector = _client()
    with client:
        page = client.get("/errors")
        own = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        collector.result = []
        collector.calls.clear()
        for planted in ("x", "A" * 43, "A" * 32 + "." + "B" * 43,
                        security.new_csrf_token(b"another dashboard's key......."[:32])):
            client.cookies.set(security.CSRF_COOKIE, planted)
            response = client.post("/errors/7/retry", data={"csrf": planted},
                                   headers={"cookie": f"{security.CSRF_COOKIE}={planted}"})
            assert response.status_code == 403, planted
        assert collector.calls == []
        # The dashboard's own token, from its own page, still works.
        client.cookies.clear()
        client.cookies.set(security.CSRF_COOKIE, own)
        assert client.post("/errors/7/retry", data={"csrf": own}).status_code == 303
