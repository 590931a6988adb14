"""Keeping the dashboard to the people it is for.

- Bind: loopback by default; a non-loopback address without `CDC_DASHBOARD_TOKEN` refuses to start.
- Token: with one, every request carries it (`Authorization: Bearer ...`, or `?token=...` once, which sets an
  HttpOnly cookie holding a value derived from the token, never the token itself) or gets 401.
- Host: without a token (loopback only), requests must name a loopback host: a DNS-rebinding page cannot read it.
- CSRF: state-changing actions are POSTs that carry the CSRF token (form field or `X-CSRF-Token` header) and no
  cross-site Origin; else 403. The token is a nonce signed with a key of this dashboard process (HMAC-SHA256),
  kept in the HttpOnly `cdc_csrf` cookie: a cookie someone else planted (another site on 127.0.0.1 can set
  cookies for it, ports are not part of a cookie's scope) is not signed, so it is replaced, and the token a POST
  must carry is one only this dashboard's own pages show.
- Secrets: `cdc.redaction.Redactor` removes DSNs, the database passwords and the token from any text shown or
  logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from cdc.errors import ConfigError
from cdc.redaction import Redactor  # noqa: F401 - the dashboard's modules find it here too
from cdc.settings import Settings

SESSION_COOKIE = "cdc_dashboard_session"
CSRF_COOKIE = "cdc_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
]


# ---------------------------------------------------------------- bind

def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the dashboard on this machine."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_of(settings: Settings) -> str | None:
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token is not None else None
    return token or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ConfigError, one line) to expose the dashboard beyond loopback without a token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"CDC_DASHBOARD_TOKEN is too short: use at least {MIN_TOKEN_LENGTH} random characters "
                          "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    if token is None and not is_loopback(host):
        raise ConfigError(f"refusing to serve the dashboard on {host}, which is not a loopback address, without "
                          "a token: set CDC_DASHBOARD_TOKEN or bind 127.0.0.1")


# ---------------------------------------------------------------- token

def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"cdc-dashboard-session", hashlib.sha256).hexdigest()


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authorized(token: str, *, authorization: str | None, cookie: str | None, query_token: str | None) -> bool:
    """Whether a request proves it knows `token` (compared in constant time)."""
    offered = bearer(authorization)
    if offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    if query_token is not None and hmac.compare_digest(query_token.encode(), token.encode()):
        return True
    return cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode())


def without_token(path: str, query: str) -> str:
    """The request's path and query with the `token` parameter removed (where `?token=` redirects to)."""
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return path + ("?" + urlencode(kept) if kept else "")


def cookies_of(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is simply no cookie
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


def host_allowed(host_header: str | None, extra: Iterable[str] = ()) -> bool:
    """Whether a Host header names this machine's loopback (or one of `extra` host names)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name) or name in {e.lower() for e in extra}


class Guard:
    """ASGI middleware: token check, loopback Host check, CSRF cookie issuance and security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = [h for h in allowed_hosts if h]
        self.csrf_key = secrets.token_bytes(32)  # per process: a restart asks open pages to reload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict((k, v) for k, v in scope["headers"])
        cookies = cookies_of(scope["headers"])
        secure = scope.get("scheme") == "https"
        if self.token is None and not host_allowed(_text(headers.get(b"host")), self.allowed_hosts):
            await _plain(send, 403, "forbidden: this dashboard answers only to a loopback host name")
            return
        query = scope.get("query_string", b"").decode("latin-1")
        query_token = dict(parse_qsl(query)).get("token")
        set_cookies: list[bytes] = []
        if self.token is not None:
            if not authorized(self.token, authorization=_text(headers.get(b"authorization")),
                              cookie=cookies.get(SESSION_COOKIE), query_token=query_token):
                await _plain(send, 401, "unauthorized: send the dashboard token (Authorization: Bearer ...)",
                             [(b"www-authenticate", b'Bearer realm="cdc dashboard"')])
                return
            if query_token is not None and scope["method"] in ("GET", "HEAD"):
                # Trade the token in the URL for a cookie, and get it out of the address bar.
                location = without_token(scope.get("root_path", "") + scope["path"], query)
                await send({"type": "http.response.start", "status": 303, "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie_header(SESSION_COOKIE, session_value(self.token), secure=secure)),
                    (b"cache-control", b"no-store"), *SECURITY_HEADERS]})
                await send({"type": "http.response.body", "body": b""})
                return
        csrf = cookies.get(CSRF_COOKIE)
        if not csrf or not valid_csrf_token(self.csrf_key, csrf):
            csrf = new_csrf_token(self.csrf_key)
            set_cookies.append(cookie_header(CSRF_COOKIE, csrf, secure=secure))
        scope.setdefault("state", {})["csrf"] = csrf  # signed by this process: what a POST must carry

        async def send_with_headers(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                extra = [*SECURITY_HEADERS, *((b"set-cookie", c) for c in set_cookies)]
                present = {name for name, _ in message.get("headers", [])}
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *SECURITY_HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- CSRF

_CSRF_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")


def new_csrf_token(key: bytes) -> str:
    """A random nonce and its signature with `key`."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_csrf_signature(key, nonce)}"


def valid_csrf_token(key: bytes, value: str) -> bool:
    """Whether `value` is a token `new_csrf_token(key)` made (compared in constant time)."""
    nonce, dot, signature = value.partition(".")
    if not dot or not _CSRF_NONCE.fullmatch(nonce):
        return False
    return hmac.compare_digest(signature.encode(), _csrf_signature(key, nonce).encode())


def _csrf_signature(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, b"cdc-dashboard-csrf:" + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(expected: str | None, submitted: str | None) -> bool:
    """The token in the form (or header) is the request's own signed token (the one its cookie held, when that
    was signed by this process; otherwise a new one the request's sender has never seen)."""
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def same_origin(origin: str | None, referer: str | None, host: str | None, fetch_site: str | None) -> bool:
    """Whether a POST comes from our own pages: no cross-site Origin, Referer or Sec-Fetch-Site."""
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        return False
    for url in (origin, referer):
        if url and url != "null":
            if urlsplit(url).netloc.lower() != (host or "").lower():
                return False
        elif url == "null":
            return False
    return True


# ---------------------------------------------------------------- redaction

def reason(exc: BaseException) -> str:
    """An exception as one short line (its first line, or its type)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
