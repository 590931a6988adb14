"""The position capture reports as flushed: never past a transaction with an event the broker has not acknowledged
(at least once), and up to the last boundary once everything is acknowledged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.capture.acks import Acknowledgements


def test_a_transaction_is_confirmed_once_every_batch_opened_before_its_end_is_acknowledged() -> None:
    acks = Acknowledgements(confirmed=100)
    a = acks.opened()  # partition 0: events of T1
    b = acks.opened()  # partition 1: events of T1
    acks.boundary(200, commit_ts=5)  # T1 ends
    c = acks.opened()  # partition 2: an event of T2
    acks.boundary(300, commit_ts=6)  # T2 ends
    assert acks.confirmed == 100 and acks.pending_since == 5
    acks.acknowledged(c)  # T2's batch first: T1's are still out
    assert acks.confirmed == 100
    acks.acknowledged(b)
    assert acks.confirmed == 100
    acks.acknowledged(a)
    assert acks.confirmed == 300 and acks.confirmed_commit_ts == 6 and acks.pending_since is None


def test_a_batch_still_open_holds_back_every_boundary_after_it_was_opened() -> None:
    acks = Acknowledgements()
    a = acks.opened()
    acks.boundary(200)  # T1's events are in batch a, which later events of T2 share
    acks.boundary(300)
    assert acks.confirmed == 0
    acks.acknowledged(a)
    assert acks.confirmed == 300


def test_boundaries_without_events_are_confirmed_at_once() -> None:
    acks = Acknowledgements(confirmed=10)
    acks.boundary(50)  # a heartbeat, or a transaction of our appliers
    assert acks.confirmed == 50 and acks.unacknowledged == 0


def test_confirmed_never_moves_back() -> None:
    acks = Acknowledgements(confirmed=500)
    acks.boundary(400)  # a heartbeat read again after a reconnect
    assert acks.confirmed == 500


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_never_past_an_unacknowledged_event_and_complete_once_all_are(data: st.DataObject) -> None:
    """A stream of transactions whose events land in per-partition batches; batches are submitted when full or
    when the stream pauses, and acknowledged in any order."""
    partitions = data.draw(st.integers(1, 4))
    acks = Acknowledgements()
    open_batches: dict[int, int] = {}  # partition -> batch number
    submitted: list[int] = []
    batch_of_event: list[int] = []  # batch number of every event published so far
    ends: list[tuple[int, int]] = []  # (lsn, events published before it)
    acked: set[int] = set()
    lsn = 0
    confirmed_so_far = 0

    def check() -> None:
        nonlocal confirmed_so_far
        assert acks.confirmed >= confirmed_so_far, "moves forward only"
        confirmed_so_far = acks.confirmed
        for end, events_before in ends:
            if end <= acks.confirmed:  # confirmed: every event before that end is acknowledged
                assert all(batch in acked for batch in batch_of_event[:events_before]), (end, acks.confirmed)

    for _ in range(data.draw(st.integers(1, 12))):
        for _ in range(data.draw(st.integers(0, 6))):  # the transaction's events
            partition = data.draw(st.integers(0, partitions - 1))
            if partition not in open_batches or data.draw(st.booleans()):  # none open yet, or it filled up
                if partition in open_batches:
                    submitted.append(open_batches.pop(partition))
                open_batches[partition] = acks.opened()
            batch_of_event.append(open_batches[partition])
        lsn += data.draw(st.integers(1, 100))
        acks.boundary(lsn, commit_ts=lsn)
        ends.append((lsn, len(batch_of_event)))
        check()
        if data.draw(st.booleans()):  # the stream pauses: open batches are submitted
            submitted.extend(open_batches.values())
            open_batches.clear()
        while submitted and data.draw(st.booleans()):  # acknowledgements, in any order
            batch = submitted.pop(data.draw(st.integers(0, len(submitted) - 1)))
            acks.acknowledged(batch)
            acked.add(batch)
            check()
    for batch in [*submitted, *open_batches.values()]:
        acks.acknowledged(batch)
        acked.add(batch)
        check()
    assert acks.confirmed == lsn, "everything acknowledged: up to the last end"
    assert acks.unacknowledged == 0 and acks.pending_since is None
