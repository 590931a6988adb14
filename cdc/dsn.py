"""PostgreSQL connection strings: parsed once, as libpq parses them, and described without their secrets.

libpq takes two syntaxes, and so does `CDC_*_DSN`:

- keyword/value: `host=db1 port=5432 user=cdc password='a b' dbname=erp` (values quoted with '…', `\\` escapes);
- URI: `postgresql://user:password@host:port,host2:port2/dbname?sslmode=require` (components percent-encoded).

`parse` follows libpq's rules (fe-connect.c: conninfo_parse, conninfo_uri_parse) and refuses what libpq refuses,
plus ports that are not numbers. asyncpg reads only URIs, and splits one whose password holds a `/` in the wrong
place, so `ConnInfo.uri` writes the parsed values back as a URI with every value encoded: what asyncpg connects
with. `describe` is the one way a connection is named in messages: host, port and database — never the user or
the password. A `DsnError` names what is wrong without quoting the string (any part of it may be the password).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes, urlencode

from cdc.errors import ConfigError

URI_PREFIXES = ("postgresql://", "postgres://")
SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding", "connect_timeout",
    "client_encoding", "options", "application_name", "fallback_application_name", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication",
    "gssencmode", "sslmode", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs",
    "load_balance_hosts", "require_auth", "sslnegotiation"})
"""libpq's connection keywords (PostgreSQL 17); another one is refused, as libpq refuses it."""

ENCODE_HINT = "percent-encode / @ : ? # % and spaces in a URI's user name and password (/ is %2F, @ is %40)"


class DsnError(ConfigError):
    """A connection string libpq would not accept. The message never quotes the string."""


@dataclass(frozen=True)
class ConnInfo:
    """A parsed connection string: libpq keyword → value, in the order given."""

    params: tuple[tuple[str, str], ...]

    def get(self, keyword: str) -> str | None:
        found = None
        for key, value in self.params:
            if key == keyword:
                found = value  # the last one wins, as in libpq
        return found

    @property
    def password(self) -> str | None:
        return self.get("password") or None

    @property
    def secrets(self) -> list[str]:
        return [value for key, value in self.params if key in SECRET_KEYWORDS and value]

    @property
    def dbname(self) -> str | None:
        return self.get("dbname") or None

    def hosts(self) -> list[tuple[str, str]]:
        """(host, port) pairs as libpq pairs them: one port for all hosts, or one per host."""
        hosts = (self.get("host") or self.get("hostaddr") or "localhost").split(",")
        ports = (self.get("port") or "5432").split(",")
        if len(ports) == 1:
            ports = ports * len(hosts)
        return [(host or "localhost", port or "5432") for host, port in zip(hosts, ports, strict=False)]

    def describe(self) -> str:
        """host:port/dbname — safe to print (no user, no password)."""
        places = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts())
        return f"{places}/{self.dbname or self.get('user') or ''}"

    def uri(self) -> str:
        """The same connection as a URI with every value percent-encoded — what asyncpg connects with:
        `postgresql://user:password@host:port/dbname?other=…` (socket directories go in the query)."""
        values = {key: value for key, value in self.params}  # the last one wins
        user, password = values.pop("user", ""), values.pop("password", "")
        credentials = (_encode(user) + (":" + _encode(password) if password else "") + "@"
                       if user or password else "")
        netloc = ""
        host, port = values.get("host", ""), values.get("port", "")
        if host and not any(h.startswith("/") or h.startswith("@") for h in host.split(",")):
            del values["host"]
            ports = port.split(",") if port else []
            if len(ports) == 1:
                ports *= len(host.split(","))
            if len(ports) in (0, len(host.split(","))):
                values.pop("port", None)
                netloc = ",".join((f"[{h}]" if ":" in h else _encode(h)) + (f":{ports[i]}" if ports else "")
                                  for i, h in enumerate(host.split(",")))
            else:
                values["host"] = host
        path = "/" + _encode(values.pop("dbname")) if "dbname" in values else ""
        query = "?" + urlencode(values, quote_via=quote, safe="") if values else ""
        return f"postgresql://{credentials}{netloc}{path}{query}"


def parse(text: str) -> ConnInfo:
    """Parse a connection string in either syntax; DsnError (without the string) when libpq would refuse it."""
    if "\x00" in text:
        raise DsnError("it holds a NUL character")
    if text.startswith(URI_PREFIXES):
        params = _uri(text)
    elif text.lstrip().startswith(URI_PREFIXES):
        raise DsnError("a URI must start with postgresql:// or postgres:// (remove the spaces before it)")
    elif "://" in text.split("=", 1)[0]:
        raise DsnError("a URI must start with postgresql:// or postgres://")
    else:
        params = _keywords(text)
    info = ConnInfo(tuple(params))
    numbers = [part.strip(" ") for part in (info.get("port") or "").split(",")]
    if not all(re.fullmatch(r"[0-9]{1,5}", number) and 0 < int(number) < 65536 for number in numbers if number):
        raise DsnError("the port is not a number from 1 to 65535"
                       + (f" ({ENCODE_HINT})" if text.startswith(URI_PREFIXES) else ""))
    return info


@lru_cache(maxsize=64)
def canonical(text: str) -> str:
    """`parse(text).uri()`, remembered (settings ask for a DSN at every connection)."""
    return parse(text).uri()


def describe(text: str) -> str:
    """host:port/dbname of a connection string, safe to print; never raises."""
    try:
        return parse(text).describe()
    except DsnError:
        return "(a connection string that does not parse)"


# ---------------------------------------------------------------- keyword/value

_SPACE = " \t\n\r\f\v"


def _keywords(text: str) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] not in _SPACE and text[i] != "=":
            i += 1
        keyword = text[start:i]
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n or text[i] != "=":
            raise DsnError(f"missing \"=\" after {_name(keyword)} (keyword=value pairs separated by spaces)")
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise DsnError("a quoted value is not closed (a ' is missing)")
                if text[i] == "\\":
                    value.append(text[i + 1:i + 2])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    value.append(text[i])
                    i += 1
        else:
            while i < n and text[i] not in _SPACE:
                if text[i] == "\\":  # escapes the next character; a last one is dropped, as in libpq
                    value.append(text[i + 1:i + 2])
                    i += 2
                else:
                    value.append(text[i])
                    i += 1
        if keyword not in KEYWORDS:
            raise DsnError("a keyword is not one of libpq's connection keywords (check its spelling)")
        params.append((keyword, "".join(value)))


def _name(keyword: str) -> str:
    """A keyword as safe to show: a known one by name, anything else could be a mistyped secret."""
    return f'"{keyword}"' if keyword in KEYWORDS else "a keyword"  # e.g. 'password' run into its value


# ---------------------------------------------------------------- URI

def _uri(text: str) -> list[tuple[str, str]]:
    rest = text[text.index("://") + 3:]
    params: list[tuple[str, str]] = []
    # user[:password]@ — libpq looks for the "@" before the first "/" only
    designator = re.match(r"[^@/]*@", rest)
    if designator:
        credentials, rest = rest[:designator.end() - 1], rest[designator.end():]
        user, colon, password = credentials.partition(":")
        if user:
            params.append(("user", _decode(user)))
        if colon and password:
            params.append(("password", _decode(password)))
    hosts: list[str] = []
    ports: list[str] = []
    i, n = 0, len(rest)
    terminator = ""
    while True:
        if i < n and rest[i] == "[":
            end = rest.find("]", i)
            if end < 0:
                raise DsnError("an IPv6 host has no closing ]")
            if end == i + 1:
                raise DsnError("an IPv6 host is empty")
            host = rest[i + 1:end]
            i = end + 1
            if i < n and rest[i] not in ":/?,":
                raise DsnError("an IPv6 host is followed by something else than :port, /, ? or ,")
        else:
            start = i
            while i < n and rest[i] not in ":/?,":
                i += 1
            host = rest[start:i]
        if "@" in host:
            raise DsnError(f"a host name holds an @ ({ENCODE_HINT})")
        hosts.append(host)
        terminator = rest[i] if i < n else ""
        port = ""
        if terminator == ":":
            start = i = i + 1
            while i < n and rest[i] not in "/?,":
                i += 1
            port = rest[start:i]
            terminator = rest[i] if i < n else ""
        ports.append(port)
        if terminator != ",":
            break
        i += 1
    if ",".join(hosts):  # as libpq: "," alone is two empty hosts, and set
        params.append(("host", _decode(",".join(hosts))))
    if ",".join(ports):
        params.append(("port", _decode(",".join(ports))))
    if terminator == "/":
        start = i = i + 1
        while i < n and rest[i] != "?":
            i += 1
        if "@" in rest[start:i]:  # the rest of a password with a "/" in it, most likely
            raise DsnError(f"the database name holds an @ ({ENCODE_HINT})")
        if rest[start:i]:
            params.append(("dbname", _decode(rest[start:i])))
        terminator = rest[i] if i < n else ""
    if terminator == "?":
        params += _query(rest[i + 1:])
    return params


def _query(query: str) -> list[tuple[str, str]]:
    params = []
    pairs = query.split("&")
    if pairs and pairs[-1] == "":
        pairs.pop()  # one trailing "&" ends the query, as in libpq
    for pair in pairs if query else []:
        keyword, equals, value = pair.partition("=")
        if not equals or "=" in value:
            raise DsnError("a URI query parameter is not keyword=value")
        keyword, value = _decode(keyword), _decode(value)
        if keyword == "ssl" and value == "true":  # JDBC's spelling, which libpq accepts
            keyword, value = "sslmode", "require"
        if keyword not in KEYWORDS:
            raise DsnError("a URI query parameter is not one of libpq's connection keywords (check its spelling)")
        params.append((keyword, value))
    return params


def _encode(part: str) -> str:
    return quote(part, safe="")


def _decode(part: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", part):
        raise DsnError(f"a % is not followed by two hex digits ({ENCODE_HINT})")
    raw = unquote_to_bytes(part)
    if b"\x00" in raw:
        raise DsnError("a percent-encoded value holds %00")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DsnError("a percent-encoded value is not UTF-8") from None
