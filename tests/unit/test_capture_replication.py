"""The replication connection: its address derived from the system's DSN (URL or key=value, password never shown),
how often capture reports to the walsender, and what its failures tell a user."""

from __future__ import annotations

import psycopg2
import psycopg2.extensions
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.capture.replication import SlotInUse, replication_dsn, replication_problem, where
from cdc.capture.standby import Silence, next_check, silence, status_interval
from cdc.errors import ConfigError, ServiceUnavailable

SESSION = {"DateStyle": "ISO, YMD", "TimeZone": "UTC"}


@pytest.mark.parametrize("dsn", [
    "postgresql://cdc:p%40ss%20word@db.example:6543/erp?sslmode=require",
    "host=db.example port=6543 dbname=erp user=cdc password='p@ss word' sslmode=require",
])
def test_the_replication_dsn_keeps_every_connection_setting_of_either_form(dsn: str) -> None:
    params = psycopg2.extensions.parse_dsn(replication_dsn(dsn, "erp", "cdc-capture-erp", SESSION))
    assert params["host"] == "db.example" and params["port"] == "6543" and params["dbname"] == "erp"
    assert params["user"] == "cdc" and params["password"] == "p@ss word" and params["sslmode"] == "require"
    assert params["application_name"] == "cdc-capture-erp" and params["connect_timeout"] == "10"
    assert params["options"] == r"-c DateStyle=ISO,\ YMD -c TimeZone=UTC"
    assert where(dsn, "erp") == "db.example:6543/erp"


def test_options_of_the_dsn_are_kept_and_ours_come_last() -> None:
    dsn = "dbname=erp options='-c work_mem=8MB' connect_timeout=3"
    params = psycopg2.extensions.parse_dsn(replication_dsn(dsn, "erp", "x", {"TimeZone": "UTC"}))
    assert params["options"] == "-c work_mem=8MB -c TimeZone=UTC" and params["connect_timeout"] == "3"


def test_an_unreadable_dsn_is_a_config_error_that_does_not_repeat_it() -> None:
    with pytest.raises(ConfigError) as info:
        replication_dsn("host=db password=sec ret", "crm", "x", {})
    assert "sec" not in str(info.value) and str(info.value).startswith("crm: ")


class PgError(psycopg2.OperationalError):
    """A server error as psycopg2 raises it (pgcode and pgerror are read-only on the real classes)."""

    def __init__(self, pgcode: str | None, message: str) -> None:
        super().__init__(message)
        self._code, self._message = pgcode, message

    @property
    def pgcode(self) -> str | None:  # type: ignore[override]
        return self._code

    @property
    def pgerror(self) -> str:  # type: ignore[override]
        return self._message


def problem(code: str | None, message: str) -> Exception:
    return replication_problem(PgError(code, message), system="erp", role="sync", slot="cdc_erp",
                               place="db:5432/erp")


def test_a_missing_privilege_says_what_to_grant() -> None:
    error = problem("42501", "FATAL:  must be superuser or replication role to start walsender\n")
    assert isinstance(error, ConfigError)
    assert str(error) == ("role sync may not start replication on erp: ALTER ROLE sync REPLICATION "
                          "(and a pg_hba.conf 'replication' line)")


def test_a_missing_pg_hba_line_says_which_line() -> None:
    error = problem("28000", 'FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.7", '
                             'user "sync", no encryption\n')
    assert isinstance(error, ConfigError)
    assert str(error).startswith("role sync may not start replication on erp: pg_hba.conf has no 'replication' line")
    assert "host replication sync" in str(error) and "\n" not in str(error)


def test_slot_and_publication_problems() -> None:
    assert "was dropped while capture ran" in str(problem("42704", 'replication slot "cdc_erp" does not exist'))
    dropped = problem("42704", 'publication "cdc_erp" does not exist\nCONTEXT:  slot "cdc_erp", output plugin')
    assert isinstance(dropped, ConfigError) and "cdc capture reset" in str(dropped) and "\n" not in str(dropped)
    assert isinstance(problem("55006", 'replication slot "cdc_erp" is active for PID 42'), SlotInUse)
    assert isinstance(problem("58P01", 'could not access file "pgoutput": No such file'), ConfigError)
    lost = problem("55000", 'cannot read from logical replication slot "cdc_erp"\nDETAIL:  This slot has been '
                            "invalidated because it exceeded the maximum reserved size.")
    assert isinstance(lost, ConfigError) and "cdc capture reset" in str(lost)
    gone = problem("58P01", "requested WAL segment 000000010000000000000003 has already been removed")
    assert isinstance(gone, ConfigError) and "max_slot_wal_keep_size" in str(gone)


def test_passing_troubles_are_retried() -> None:
    for code, message in [(None, "server closed the connection unexpectedly"),
                          ("57P01", "terminating connection due to administrator command"),
                          ("53300", "number of requested standby connections exceeds max_wal_senders (currently 2)")]:
        error = problem(code, message)
        assert type(error) is ServiceUnavailable and "db:5432/erp" in str(error), message
    assert "max_wal_senders" in str(problem("53300", "exceeds max_wal_senders (currently 2)"))


def test_status_updates_come_well_inside_the_servers_timeout() -> None:
    assert status_interval(60) == 10  # the default: as pg_recvlogical and PostgreSQL's subscribers
    assert status_interval(8) == 2
    assert status_interval(0) == 10  # no timeout on the server
    assert status_interval(0.1) == 0.2


@given(st.floats(0, 1000), st.floats(0.5, 600), st.booleans())
def test_silence_asks_for_a_reply_after_half_the_timeout_and_gives_up_after_all_of_it(
        silent_for: float, timeout: float, pinged: bool) -> None:
    action = silence(silent_for, timeout, pinged)
    if silent_for >= timeout:
        assert action is Silence.LOST
    elif silent_for >= timeout / 2 and not pinged:
        assert action is Silence.PING
    else:
        assert action is Silence.WAIT
        wait = next_check(silent_for, timeout, pinged)
        assert wait is not None and wait > 0
        assert silence(silent_for + wait, timeout, pinged) is not Silence.WAIT, "the next check can decide"


def test_without_a_timeout_silence_is_never_an_error() -> None:
    assert silence(10_000, 0, False) is Silence.WAIT and next_check(10_000, 0, False) is None
