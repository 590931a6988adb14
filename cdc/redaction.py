"""The one redaction: every text `cdc` shows or logs — command output, log lines, dashboard pages — passes through
a `Redactor` built from the settings, which removes the secrets it knows (the local cluster's password, each
DSN's password and the DSN itself, the dashboard token) and anything shaped like one (credentials in a URL,
`password=…`). Connections are named with `cdc.dsn.describe`, which never includes a secret to begin with: this is
the net under it, for text a library made (an error message quoting a connection string, say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from cdc import dsn
from cdc.settings import Settings

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<credentials>[^\s/@]+@)", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"((?:ssl)?password\s*[=:]\s*)('(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|\S+)", re.IGNORECASE)
MIN_SECRET_LENGTH = 4
"""Shorter known values are not blanked out of every word (a password `cdc` would eat `cdc sync`)."""


class Redactor:
    """Removes secrets from text: credentials in URLs, `password=...` pairs, and the known secret values."""

    def __init__(self, secrets_: Iterable[str | None]) -> None:
        values = {s for s in secrets_ if s and len(s) >= MIN_SECRET_LENGTH}
        # as JSON output and URIs spell them, too
        values |= {json.dumps(s)[1:-1] for s in values} | {quote(s, safe="") for s in values}
        self.secrets = sorted(values, key=len, reverse=True)

    @classmethod
    def of(cls, settings: Settings) -> Redactor:
        known: list[str | None] = [settings.local_password(), _token(settings)]
        for database in ("erp", "crm", "state"):
            explicit = getattr(settings, f"{database}_dsn")
            texts = [settings.dsn(database)]  # type: ignore[arg-type]
            if explicit is not None:
                texts.append(explicit.get_secret_value())
            for text in texts:
                known.append(text)
                known += _secrets_of(text)
        return cls(known)

    def __call__(self, text: str) -> str:
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
        text = _PASSWORD_PARAM.sub(lambda m: f"{m.group(1)}***", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def deep(self, value: Any) -> Any:
        """`value` with every string in it (in dicts, lists, tuples) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.deep(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.deep(item) for item in value)
        return value


def _token(settings: Settings) -> str | None:
    token = settings.dashboard_token
    return token.get_secret_value() if token is not None else None


def _secrets_of(text: str) -> list[str]:
    try:
        return dsn.parse(text).secrets
    except dsn.DsnError:
        return []
