"""The local cluster's password: generated once per installation and kept in `<CDC_HOME>/pgpass` (mode 0600), in
libpq's password-file format (`*:*:*:*:<password>`), so `PGPASSFILE=<CDC_HOME>/pgpass psql …` finds it too.

`CDC_PG_PASSWORD` overrides it. Without a file (a cluster made before passwords were generated, with the shared
default `cdc`), `current` is that old default, and `cdc stack up` replaces it by a generated one
(`LocalPostgres.harden`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

FILE_NAME = "pgpass"
LEGACY = "cdc"
"""What every cluster made by `cdc stack` before this had."""


def path(home: Path) -> Path:
    return home.resolve() / FILE_NAME


def read(home: Path) -> str | None:
    """The stored password, or None when there is no file (or no line in it)."""
    try:
        text = path(home).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    for line in text.splitlines():
        if line and not line.startswith("#"):
            return _unescape(_fields(line)[-1])
    return None


def current(home: Path) -> str:
    """The password of the local cluster at `home` when CDC_PG_PASSWORD does not say it."""
    stored = read(home)
    return LEGACY if stored is None else stored


def generate() -> str:
    return secrets.token_urlsafe(24)


def write(home: Path, password: str, *, replace: bool = False) -> Path:
    """Store `password` (mode 0600 from the start). Without `replace`, an existing file is an error."""
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(f"*:*:*:*:{_escape(password)}\n")
        if replace:
            os.replace(staged, target)
        else:
            os.link(staged, target)  # fails if another process stored one first
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    return target


def ensure(home: Path) -> str:
    """The stored password, generated and stored first if there is none (two processes agree on one)."""
    found = read(home)
    if found is not None:
        return found
    try:
        write(home, generate())
    except FileExistsError:
        pass
    stored = read(home)
    assert stored is not None
    return stored


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677), computed here so that setting a
    password never sends it — nor lets the server log it. For ASCII passwords (the generated ones) SASLprep is
    the identity."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _fields(line: str) -> list[str]:
    """A pgpass line's five fields (`:` separates, `\\` escapes)."""
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields
