"""Connecting to the three PostgreSQL databases (ERP, CRM, state) with errors a user can read."""

from __future__ import annotations

from typing import Any

import asyncpg

from cdc import temporal
from cdc.dsn import describe
from cdc.errors import ServiceUnavailable
from cdc.table_gateway import qualified, quote_ident

# quote_ident and qualified are the table gateway's, for the statements about the server's own objects (roles,
# databases, publications); statements against the ERP's and the CRM's tables are built by the gateway itself.

__all__ = ["CONNECTION_LOST", "connect", "describe", "pool", "qualified", "quote_ident"]

CONNECTION_LOST = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                   asyncpg.OperatorInterventionError,
                   # a connection terminated under a running statement can be left in a state where the next use
                   # fails with this instead of a connection error: it is as lost
                   asyncpg.InternalClientError)
"""A database connection that is gone (or unusable): open it again, with backoff."""


async def connect(dsn: str, *, role: str, timeout: float = 10.0, **kwargs: Any) -> asyncpg.Connection:
    """Open one connection; failures become ServiceUnavailable naming the database, never the password. Dates and
    timestamps are read and written exactly (`cdc.temporal`)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout, **kwargs)
        try:
            await temporal.exact(conn)
        except BaseException:
            await conn.close()
            raise
        return conn
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable(f"{role} database at {describe(dsn)} is unreachable: {_reason(exc)}") from None


async def pool(dsn: str, *, role: str, min_size: int = 1, max_size: int = 4, **kwargs: Any) -> asyncpg.Pool:
    """A pool for reads. A released connection is reset only when it is still in a transaction: asyncpg's default
    reset is one more round trip (`RESET ALL`, `UNLISTEN *`, …) after every query, for session state these
    readers never set."""
    try:
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=10,
                                         init=temporal.exact, reset=_reset_if_in_transaction, **kwargs)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable(f"{role} database at {describe(dsn)} is unreachable: {_reason(exc)}") from None


async def _reset_if_in_transaction(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.reset()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text

