"""How long capture pauses after a peek that found nothing."""

from hypothesis import given
from hypothesis import strategies as st

from cdc.capture.loop import IDLE_AFTER, IDLE_WAIT_MAX, idle_wait


def test_cheap_empty_peeks_poll_at_the_interval() -> None:
    assert idle_wait(0.002, 0.05, 0.1, IDLE_AFTER) == 0.05


def test_costly_empty_peeks_wait_so_polling_stays_within_its_share() -> None:
    # a 30 ms peek with a 10 % share: 270 ms idle, so 30 of every 300 ms are spent peeking
    assert abs(idle_wait(0.03, 0.05, 0.1, IDLE_AFTER) - 0.27) < 1e-9


def test_the_pause_is_bounded() -> None:
    assert idle_wait(5.0, 0.05, 0.1, IDLE_AFTER) == IDLE_WAIT_MAX


@given(st.floats(0, 10), st.floats(0.001, 0.5), st.floats(0.01, 1))
def test_peeking_never_exceeds_its_share_below_the_bound(peek: float, interval: float, share: float) -> None:
    pause = idle_wait(peek, interval, share, IDLE_AFTER)
    assert interval <= max(pause, interval) and pause <= max(interval, IDLE_WAIT_MAX)
    if pause < IDLE_WAIT_MAX and peek > 0:
        assert peek / (peek + pause) <= share + 1e-9


def test_a_quiet_moment_between_changes_is_not_idleness() -> None:
    # changes flowing: an empty peek now and then must not delay the next change
    assert idle_wait(0.08, 0.05, 0.1, IDLE_AFTER - 1) == 0.05
