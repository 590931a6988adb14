"""One streaming-replication session: `START_REPLICATION SLOT … LOGICAL …` with pgoutput over a psycopg2 logical
replication connection, read without blocking the event loop.

The connection is psycopg2's asynchronous kind: connecting and starting are driven by `poll()`, and the stream by
the non-blocking `read_message()` (a pgoutput message, or None once nothing is buffered; keepalives are consumed
inside it, and answered there when the server asks for a reply). While capture waits for the next message, the
socket is registered with the event loop and its callback reads: keepalives — a walsender sends one each time it
has read WAL other databases wrote and finds nothing for us — are consumed right there, without waking capture's
reader. The socket is registered only while capture waits: left registered, a socket with unread data would wake
the loop over and over while capture deliberately does not read (a stalled broker holds reading back, and TCP then
holds the walsender back). Everything runs on the event loop's thread, so the status updates sent from another
task never race a read.
"""

from __future__ import annotations

import asyncio
import time

import psycopg2
import psycopg2.extensions
from psycopg2.extras import REPLICATION_LOGICAL, LogicalReplicationConnection, ReplicationCursor, ReplicationMessage

PROTO_VERSION = "1"  # whole transactions at commit; see docs/capture.md for why not version 2's streaming


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


async def _ready(conn: psycopg2.extensions.connection, loop: asyncio.AbstractEventLoop) -> None:
    """Drive an asynchronous psycopg2 connection until its current operation (connect, a command) completes."""
    while True:
        state = conn.poll()  # raises the operation's error, if any
        if state == psycopg2.extensions.POLL_OK:
            return
        fd = conn.fileno()
        future = loop.create_future()
        if state == psycopg2.extensions.POLL_READ:
            loop.add_reader(fd, _resolve, future, True)
            try:
                await future
            finally:
                loop.remove_reader(fd)
        else:
            loop.add_writer(fd, _resolve, future, True)
            try:
                await future
            finally:
                loop.remove_writer(fd)


class ReplicationStream:
    """`read()` pgoutput messages, `next()` waits for one, `report()` the flush position, `close()`."""

    def __init__(self, conn: psycopg2.extensions.connection, cursor: ReplicationCursor,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.cursor = cursor
        self.read = cursor.read_message  # → psycopg2.extras.ReplicationMessage | None; never blocks
        self._loop = loop
        self._fd = conn.fileno()
        self._waiter: asyncio.Future | None = None
        self.reported_at = time.monotonic()  # when a status update was last sent by us
        self.heard_at = time.monotonic()  # when the socket last brought something (while capture waited)

    @classmethod
    async def open(cls, dsn: str, slot: str, publication: str, start_lsn: int, *, status_interval: float,
                   timeout: float = 30.0) -> ReplicationStream:
        """Connect and start streaming the slot from `start_lsn` (0: from the slot's confirmed position).
        psycopg2 errors are raised as they are; `cdc.capture.replication.replication_problem` explains them."""
        loop = asyncio.get_running_loop()
        conn = psycopg2.connect(dsn, connection_factory=LogicalReplicationConnection, async_=True)
        try:
            await asyncio.wait_for(_ready(conn, loop), timeout)
            cursor = conn.cursor()
            cursor.start_replication(
                slot_name=slot, slot_type=REPLICATION_LOGICAL, start_lsn=start_lsn, decode=False,
                options={"proto_version": PROTO_VERSION, "publication_names": _quoted(publication),
                         "messages": "true"},
                status_interval=max(1.0, status_interval))
            await asyncio.wait_for(_ready(conn, loop), timeout)
        except BaseException:
            conn.close()
            raise
        stream = cls(conn, cursor, loop)
        if start_lsn:
            # psycopg2 reports its own flush position in the status updates it sends from read_message, and moves
            # it to a keepalive's WAL end once what it knows as flushed covers the last message read: start it at
            # the position streaming starts from, never below what the slot has confirmed.
            cursor.send_feedback(write_lsn=start_lsn, flush_lsn=start_lsn)
        return stream

    @property
    def wal_end(self) -> int:
        """The server's WAL position as of the last message or keepalive received."""
        return self.cursor.wal_end

    async def next(self, timeout: float | None) -> ReplicationMessage | None:
        """The next message once the socket brings one; None when `timeout` passes or `wake()` is called first.
        Call it only after `read()` returned None."""
        future = self._loop.create_future()
        self._waiter = future
        self._loop.add_reader(self._fd, self._readable, future)
        timer = self._loop.call_later(timeout, _resolve, future, None) if timeout is not None else None
        try:
            return await future
        finally:
            self._loop.remove_reader(self._fd)
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _readable(self, future: asyncio.Future) -> None:
        self.heard_at = time.monotonic()
        if future.done():
            return
        try:
            message = self.read()
        except BaseException as exc:  # the connection's failure, raised where capture waits
            future.set_exception(exc)
            return
        if message is not None:
            future.set_result(message)

    def wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter, None)

    def report(self, flush_lsn: int, *, reply: bool = False) -> None:
        """Send a standby status update now: everything before `flush_lsn` is safely published (`reply`: ask the
        server to answer at once)."""
        self.cursor.send_feedback(write_lsn=flush_lsn, flush_lsn=flush_lsn, reply=reply, force=True)
        self.reported_at = time.monotonic()

    def close(self) -> None:
        self.wake()
        if not self.conn.closed:
            self.conn.close()


def _quoted(name: str) -> str:
    """A publication name as pgoutput's `publication_names` list reads it (unquoted names would be folded to lower
    case)."""
    return '"' + name.replace('"', '""') + '"'
