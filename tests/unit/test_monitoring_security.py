"""Dashboard security: bind check, token, loopback Host, CSRF, redaction — the pure checks and, through
starlette's TestClient, the application with a collector that needs no service."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from cdc.errors import ConfigError
from cdc.monitoring import security
from cdc.monitoring.app import create_app
from cdc.settings import Settings
from tests.unit.monitoring_samples import StubCollector

TOKEN = "tok-" + "x1y2z3" * 5
LOCAL = "http://127.0.0.1:8077"


# ---------------------------------------------------------------- pure checks

@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.5.6.7", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.org", False), ("", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert security.is_loopback(host) is loopback


def test_non_loopback_without_token_refuses_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        security.check_bind("0.0.0.0", None)
    assert "CDC_DASHBOARD_TOKEN" in str(caught.value) and "\n" not in str(caught.value)
    security.check_bind("0.0.0.0", TOKEN)
    security.check_bind("127.0.0.1", None)
    with pytest.raises(ConfigError, match="too short"):
        security.check_bind("127.0.0.1", "short")


def test_authorized_by_bearer_query_or_session_cookie() -> None:
    session = security.session_value(TOKEN)
    assert TOKEN not in session
    ok = dict(authorization=None, cookie=None, query_token=None)
    assert not security.authorized(TOKEN, **ok)
    assert security.authorized(TOKEN, **{**ok, "authorization": f"Bearer {TOKEN}"})
    assert security.authorized(TOKEN, **{**ok, "authorization": f"bearer {TOKEN}"})
    assert not security.authorized(TOKEN, **{**ok, "authorization": f"Basic {TOKEN}"})
    assert not security.authorized(TOKEN, **{**ok, "authorization": "Bearer nope"})
    assert security.authorized(TOKEN, **{**ok, "query_token": TOKEN})
    assert security.authorized(TOKEN, **{**ok, "cookie": session})
    assert not security.authorized(TOKEN, **{**ok, "cookie": TOKEN})


def test_without_token_keeps_other_parameters() -> None:
    assert security.without_token("/jobs", f"token={TOKEN}&kind=full") == "/jobs?kind=full"
    assert security.without_token("/topics", f"token={TOKEN}") == "/topics"


def test_csrf_and_origin_checks() -> None:
    key = b"k" * 32
    value = security.new_csrf_token(key)
    assert security.valid_csrf_token(key, value)
    assert not security.valid_csrf_token(b"other key" * 4, value)
    assert security.csrf_ok(value, value)
    assert not security.csrf_ok(value, value[:-1] + ("A" if value[-1] != "A" else "B"))
    assert not security.csrf_ok(None, value) and not security.csrf_ok(value, None) and not security.csrf_ok("", "")
    assert security.same_origin(None, None, "127.0.0.1:8077", None)
    assert security.same_origin("http://127.0.0.1:8077", None, "127.0.0.1:8077", "same-origin")
    assert not security.same_origin("http://evil.example", None, "127.0.0.1:8077", None)
    assert not security.same_origin("null", None, "127.0.0.1:8077", None)
    assert not security.same_origin(None, "http://evil.example/x", "127.0.0.1:8077", None)
    assert not security.same_origin(None, None, "127.0.0.1:8077", "cross-site")


def test_host_allowed() -> None:
    assert security.host_allowed("127.0.0.1:8077")
    assert security.host_allowed("localhost")
    assert security.host_allowed("[::1]:8077")
    assert not security.host_allowed("evil.example:8077")
    assert not security.host_allowed(None)
    assert security.host_allowed("dash.internal:80", ["dash.internal"])


def test_redactor_removes_dsns_passwords_and_tokens() -> None:
    settings = Settings(pg_password=SecretStr("Very-Secret-pw9"), dashboard_token=SecretStr(TOKEN))
    redact = security.Redactor.of(settings)
    text = (f"connect postgresql://cdc:Very-Secret-pw9@db:5432/erp failed; password=Very-Secret-pw9 "
            f"token {TOKEN}; kafka://u:p@h")
    cleaned = redact(text)
    assert "Very-Secret-pw9" not in cleaned and TOKEN not in cleaned and "u:p@" not in cleaned
    assert "postgresql://***@db:5432/erp" in cleaned
    # A short password (the local stack's `cdc`) is not blanked out of every word.
    assert security.Redactor.of(Settings(pg_password=SecretStr("cdc")))("cdc sync") == "cdc sync"


# ---------------------------------------------------------------- the application

def _app(token: str | None = None, host: str = "127.0.0.1") -> tuple[TestClient, StubCollector]:
    settings = Settings(dashboard_token=SecretStr(token) if token else None, dashboard_host=host,
                        pg_password=SecretStr("Very-Secret-pw9"))
    collector = StubCollector(settings)
    app = create_app(settings, collector=collector, sample_in_background=False)
    return TestClient(app, base_url=LOCAL, follow_redirects=False), collector


def test_without_token_loopback_hosts_only() -> None:
    client, _ = _app()
    with client:
        assert client.get("/topics").status_code == 200
        assert client.get("/topics", headers={"host": "evil.example"}).status_code == 403
        assert client.get("/healthz").json() == {"status": "ok"}


def test_with_token_every_request_needs_it() -> None:
    client, _ = _app(TOKEN, host="0.0.0.0")
    with client:
        for path in ("/topics", "/errors", "/metrics", "/healthz", "/readyz", "/api/snapshot", "/static/dashboard.js",
                     "/events?page=topics&max=1"):
            denied = client.get(path)
            assert denied.status_code == 401, path
            assert TOKEN not in denied.text
        assert client.get("/topics", headers={"authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert client.get("/topics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        # Any host name is fine with a token (it is served beyond loopback).
        assert client.get("/topics", headers={"authorization": f"Bearer {TOKEN}", "host": "dash.example"}
                          ).status_code == 200


def test_query_token_becomes_an_httponly_cookie_and_leaves_the_url() -> None:
    client, _ = _app(TOKEN, host="0.0.0.0")
    with client:
        first = client.get(f"/jobs?kind=full&token={TOKEN}")
        assert first.status_code == 303
        assert first.headers["location"] == "/jobs?kind=full"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        page = client.get("/jobs?kind=full")  # the cookie alone now
        assert page.status_code == 200
        assert TOKEN not in page.text


def _csrf(client: TestClient, path: str = "/errors") -> str:
    page = client.get(path)
    assert page.status_code == 200
    cookie = client.cookies.get(security.CSRF_COOKIE)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found and cookie == found.group(1)
    return cookie


def test_post_needs_the_csrf_token() -> None:
    client, collector = _app()
    with client:
        csrf = _csrf(client)
        collector.result = []  # the state database answers from now on: no such error
        collector.calls.clear()
        assert client.post("/errors/7/retry", data={}).status_code == 403
        assert client.post("/errors/7/retry", data={"csrf": "A" * 43}).status_code == 403
        assert client.post("/errors/7/skip", data={}).status_code == 403
        assert client.post("/errors/retry-all", data={"csrf": ""}).status_code == 403
        assert collector.calls == []  # nothing reached the database
        done = client.post("/errors/7/retry", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"].startswith("/errors?")
        by_header = client.post("/errors/retry-all", headers={"x-csrf-token": csrf})
        assert by_header.status_code == 303
        cross = client.post("/errors/7/retry", data={"csrf": csrf}, headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
        assert collector.calls == ["state", "state"]


def test_post_with_a_token_needs_both() -> None:
    client, collector = _app(TOKEN, host="0.0.0.0")
    collector.result = []
    auth = {"authorization": f"Bearer {TOKEN}"}
    with client:
        assert client.post("/errors/7/retry", data={"csrf": "x" * 43}).status_code == 401
        client.get("/errors", headers=auth)
        csrf = client.cookies.get(security.CSRF_COOKIE)
        assert client.post("/errors/7/retry", data={"csrf": csrf}).status_code == 401
        assert client.post("/errors/7/retry", data={"csrf": "y" * 43}, headers=auth).status_code == 403
        assert client.post("/errors/7/retry", data={"csrf": csrf}, headers=auth).status_code == 303


def test_action_redirects_only_to_local_paths() -> None:
    client, collector = _app()
    with client:
        csrf = _csrf(client)
        collector.result = []
        for back in ("https://evil.example/", "//evil.example/x", "/\\evil"):
            done = client.post("/errors/7/retry", data={"csrf": csrf, "back": back})
            assert done.headers["location"].startswith("/errors?"), back
        done = client.post("/errors/7/retry", data={"csrf": csrf, "back": "/jobs/abc?x=1"})
        assert done.headers["location"].startswith("/jobs/abc?x=1&")


def test_security_headers() -> None:
    client, _ = _app()
    with client:
        page = client.get("/topics")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert "HttpOnly" in page.headers["set-cookie"]
