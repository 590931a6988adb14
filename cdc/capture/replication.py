"""The replication connection capture reads a system through: its address, derived from the system's DSN, and
what its failures mean for a user (pure).

A replication connection is an ordinary libpq connection with `replication=database` (psycopg2's
`LogicalReplicationConnection` adds it). PostgreSQL admits it only for a role with the REPLICATION attribute (or a
superuser) and a pg_hba.conf line whose database field is `replication` — `all` does not match it.
"""

from __future__ import annotations

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions

from cdc.dsn import describe
from cdc.errors import CdcError, ConfigError, ServiceUnavailable

CONNECT_TIMEOUT = "10"  # seconds, unless the DSN says otherwise


class SlotInUse(ServiceUnavailable):
    """Another reader (an earlier capture still shutting down, a second one) holds the slot: retried."""


def _params(dsn: str, system: str) -> dict[str, str]:
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        # libpq's message may quote a piece of the string, password included: not repeated here.
        raise ConfigError(f"{system}: its DSN is not a libpq connection string (URL or key=value form), so no "
                          "replication connection can be derived from it") from None


def replication_dsn(dsn: str, system: str, application_name: str, session: dict[str, str]) -> str:
    """The connection string of a replication connection to the database `dsn` names (URL or key=value form, as
    in CDC_ERP_DSN / CDC_CRM_DSN): the same host, port, user, password, database and options, with our
    application name, a connect timeout, and the `session` settings (the walsender prints values with them)."""
    params = _params(dsn, system)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    params["application_name"] = application_name
    ours = " ".join(f"-c {name}={_escaped(value)}" for name, value in session.items())
    params["options"] = f"{params['options']} {ours}" if params.get("options") else ours
    return psycopg2.extensions.make_dsn(**params)


def _escaped(value: str) -> str:
    """A setting's value inside libpq's `options` (spaces separate arguments there)."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def where(dsn: str, system: str) -> str:
    """host:port/database of a DSN, without user or password (safe to print): `cdc.dsn.describe`, the one way a
    connection is named."""
    return describe(dsn)


def role_of(dsn: str, system: str) -> str:
    return _params(dsn, system).get("user") or "(the connecting user)"


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "pgerror", None) or str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    return reason.removeprefix("FATAL:").removeprefix("ERROR:").strip()


def replication_problem(exc: BaseException, *, system: str, role: str, slot: str, place: str) -> CdcError:
    """A failure of the replication connection as capture reports it: ConfigError for what a user must fix (capture
    stops), ServiceUnavailable for what passes (retried while capture runs), SlotInUse for a busy slot."""
    code = getattr(exc, "pgcode", None)
    reason = first_line(exc)
    may_not = f"role {role} may not start replication on {system}"
    if code == psycopg2.errorcodes.INSUFFICIENT_PRIVILEGE:
        return ConfigError(f"{may_not}: ALTER ROLE {role} REPLICATION (and a pg_hba.conf 'replication' line)")
    if code == psycopg2.errorcodes.INVALID_AUTHORIZATION_SPECIFICATION and "pg_hba.conf" in reason:
        return ConfigError(f"{may_not}: pg_hba.conf has no 'replication' line for it from this host (add e.g. "
                           f"`host replication {role} <client address> scram-sha-256` and reload; the role needs "
                           "ALTER ROLE ... REPLICATION too)")
    if code == psycopg2.errorcodes.UNDEFINED_OBJECT and "replication slot" in reason:
        return ConfigError(f"replication slot {slot} was dropped while capture ran; start capture again to create "
                           "it (changes committed in between are not captured)")
    if code == psycopg2.errorcodes.UNDEFINED_OBJECT and "publication" in reason:
        return ConfigError(f"slot {slot}: {reason}; the slot still holds changes decoded through it: "
                           "reset the slot with `cdc capture reset` (unpublished changes are lost)")
    full = getattr(exc, "pgerror", None) or str(exc)
    if "invalidated" in full or "has already been removed" in reason:
        return ConfigError(f"replication slot {slot} can no longer be read ({reason}): the WAL it needed is gone "
                           "(max_slot_wal_keep_size); `cdc capture reset`, then sync the records changed meanwhile")
    if code == psycopg2.errorcodes.UNDEFINED_FILE or ("output plugin" in reason and "pgoutput" in reason):
        return ConfigError(f"the pgoutput output plugin is unavailable for slot {slot}: {reason}")
    if code == psycopg2.errorcodes.OBJECT_IN_USE:
        return SlotInUse(f"{system}: replication slot {slot} is in use by another reader: {reason}")
    if code == psycopg2.errorcodes.TOO_MANY_CONNECTIONS and "max_wal_senders" in reason:
        return ServiceUnavailable(f"{system} database at {place}: {reason} (raise max_wal_senders)")
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) or code is None or code[:2] in (
            "08", "57", "53", "28"):
        return ServiceUnavailable(f"{system} database at {place}: replication connection failed: {reason}")
    return ServiceUnavailable(f"{system}: replication stream of slot {slot} failed: {reason}")
