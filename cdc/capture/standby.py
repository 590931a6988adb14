"""How often capture reports to the walsender, and what it makes of the walsender's silence (pure).

A walsender drops a client it has not heard from for `wal_sender_timeout` (60 s by default), and asks for a reply
(a keepalive with the reply flag) after half of it. Capture sends a standby status update — its flush position —
at least every `status_interval` seconds from a task of its own, so the server hears from it even while capture
does not read (a stalled broker holds reading back). In the other direction, while capture waits for the stream,
a server silent for half the timeout is asked for a reply, and one silent for the whole timeout is taken for lost,
as PostgreSQL's own subscribers do with `wal_receiver_timeout`.
"""

from __future__ import annotations

import math
from enum import Enum

LONGEST_INTERVAL = 10.0  # seconds: what pg_recvlogical and PostgreSQL's subscribers use by default
SHORTEST_INTERVAL = 0.2


def status_interval(wal_sender_timeout: float) -> float:
    """Seconds between status updates: 10, or a quarter of the server's timeout when that is shorter than 40 s
    (a status update late by a whole interval still arrives before the server asks for one)."""
    if wal_sender_timeout <= 0:  # the server never times out
        return LONGEST_INTERVAL
    return max(SHORTEST_INTERVAL, min(LONGEST_INTERVAL, wal_sender_timeout / 4))


class Silence(Enum):
    WAIT = "wait"  # keep waiting for the stream
    PING = "ping"  # send a status update that asks the server to reply
    LOST = "lost"  # nothing heard for the whole timeout: the connection is gone


def silence(silent_for: float, timeout: float, pinged: bool) -> Silence:
    """What to do after `silent_for` seconds without a byte from the server (`timeout` 0: never give up)."""
    if timeout <= 0:
        return Silence.WAIT
    if silent_for >= timeout:
        return Silence.LOST
    if silent_for >= timeout / 2 and not pinged:
        return Silence.PING
    return Silence.WAIT


def next_check(silent_for: float, timeout: float, pinged: bool) -> float | None:
    """Seconds until `silence` could answer differently; None when it never will (no timeout)."""
    if timeout <= 0:
        return None
    due = timeout if pinged or silent_for >= timeout / 2 else timeout / 2
    wait = max(0.0, due - silent_for)
    if silent_for + wait < due:  # rounded down: a wait that falls one ulp short would only be followed by another
        wait = math.nextafter(wait, math.inf)
    return wait
