"""Issue #19, items 1 and 2: connection strings in either libpq syntax are parsed as libpq parses them, named in
messages without their secrets, and refused — in one line that quotes nothing of them — when libpq would refuse
them (or when a password with an unencoded / or @ spills into the host or database name)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from cdc import dsn
from cdc.redaction import Redactor
from cdc.settings import Settings, problems
from tests.security.libpq import conninfo_parse

SECRET = "Pl4nted-S3cret"


@pytest.mark.parametrize("text, expected", [
    (f"host=db1 port=6432 user=cdc password={SECRET} dbname=erp",
     {"host": "db1", "port": "6432", "user": "cdc", "password": SECRET, "dbname": "erp"}),
    (f"host = db1  password = '{SECRET} with \\' and spaces' dbname=erp",
     {"host": "db1", "password": f"{SECRET} with ' and spaces", "dbname": "erp"}),
    (f"postgresql://cdc:{SECRET}%2Fx%40y@db1:6432/erp?sslmode=require",
     {"user": "cdc", "password": f"{SECRET}/x@y", "host": "db1", "port": "6432", "dbname": "erp",
      "sslmode": "require"}),
    ("postgres://[::1]:5432,db2:5433/crm", {"host": "::1,db2", "port": "5432,5433", "dbname": "crm"}),
    ("postgresql:///state?host=/var/run/postgresql", {"dbname": "state", "host": "/var/run/postgresql"}),
    (f"postgresql://cdc:{SECRET}?#@db1/erp", {"user": "cdc", "password": f"{SECRET}?#", "host": "db1",
                                             "dbname": "erp"}),
])
def test_both_syntaxes_parse_as_libpq_parses_them(text: str, expected: dict[str, str]) -> None:
    assert dict(dsn.parse(text).params) == expected
    assert conninfo_parse(text) == expected


@pytest.mark.parametrize("text", [
    f"postgresql://cdc:{SECRET}/more@db1:5432/erp",  # the case: libpq reads host 'cdc', port 'Pl4n…'
    f"postgresql://cdc:1234/{SECRET}@db1/erp",  # a port that happens to be digits: the rest lands in dbname
    f"postgresql://cdc:a@{SECRET}@db1/erp",  # an unencoded @: the rest lands in the host
    f"host=db1 password{SECRET}",
    f"host=db1 bogus{SECRET}=1",
    f"host=db1 password='{SECRET}",
    f"postgresql://cdc:{SECRET}%zz@db1/erp",
    f"postgresql://cdc:{SECRET}@db1/erp?{SECRET}",
    f"postgresql://cdc@db1/erp?application_name={SECRET}=x",
    f"host=db1 port={SECRET}",
    f"password={SECRET}\x00",
    f"mysql://cdc:{SECRET}@db1/erp",
])
def test_a_string_libpq_would_not_connect_with_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(dsn.DsnError) as refused:
        dsn.parse(text)
    message = str(refused.value)
    assert "\n" not in message and SECRET not in message and SECRET[:4] not in message
    assert "(a connection string that does not parse)" == dsn.describe(text)


@pytest.mark.parametrize("text", [
    f"host=db1 port=6432 user=cdc password={SECRET} dbname=erp",
    f"postgresql://cdc:{SECRET}%2F@db1:6432/erp",
    f"user=cdc password='{SECRET} x' host=db1 port=6432 dbname=erp sslpassword={SECRET}2",
])
def test_a_connection_is_described_by_host_port_and_database_only(text: str) -> None:
    assert dsn.describe(text) == "db1:6432/erp"
    assert dsn.parse(dsn.parse(text).uri()).params and dict(dsn.parse(dsn.parse(text).uri()).params) == \
        dict(dsn.parse(text).params)


def test_settings_refuse_an_unparsable_dsn_in_one_line_per_variable_without_it() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(erp_dsn=f"postgresql://cdc:{SECRET}/x@db1:5432/erp", crm_dsn=f"host=db1 password='{SECRET}")
    lines = problems(refused.value)
    assert [line.split(":", 1)[0] for line in lines] == ["CDC_ERP_DSN", "CDC_CRM_DSN"]
    assert all(SECRET not in line and line.count("\n") == 0 for line in lines)
    assert "percent-encode" in lines[0]


def test_settings_hand_asyncpg_an_encoded_uri_of_a_keyword_dsn() -> None:
    s = Settings(erp_dsn=f"host=db1 port=6432 user=cdc password='{SECRET} /@:' dbname=erp", crm_dsn="  ")
    assert s.crm_dsn is None
    assert s.dsn("erp") == "postgresql://cdc:Pl4nted-S3cret%20%2F%40%3A@db1:6432/erp"
    local = Settings(pg_password=SecretStr("a/b@c"), pg_port=26432).local_dsn("erp")
    assert local == "postgresql://cdc:a%2Fb%40c@127.0.0.1:26432/erp"


def test_the_redactor_knows_every_dsn_password_whatever_its_syntax() -> None:
    s = Settings(erp_dsn=f"host=db1 user=cdc password='{SECRET} x' dbname=erp",
                 crm_dsn=f"postgresql://cdc:{SECRET}%2Fy@db1/crm", state_dsn=f"sslpassword={SECRET}z dbname=s")
    redact = Redactor.of(s)
    for spelled in (f"{SECRET} x", f"{SECRET}/y", f"{SECRET}%2Fy", f"{SECRET}z", '"' + SECRET + ' x"'):
        assert SECRET not in redact(f"failed: {spelled} ({spelled!r})"), spelled


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.builds(lambda parts: "postgresql://" + "".join(parts),
              st.lists(st.sampled_from(["u", ":", "p", "@", "/", "?", "h", ",", "[", "]", "::1", "5432", "%2F",
                                        "%zz", "db", "=", "&", "sslmode", "require", "host", "'", " "]),
                       max_size=10)),
    st.builds(lambda pairs: " ".join(f"{k}{eq}{v}" for k, eq, v in pairs),
              st.lists(st.tuples(st.sampled_from(["host", "port", "dbname", "password", "user", "bogus", ""]),
                                 st.sampled_from(["=", " = ", " "]),
                                 st.one_of(_TEXT, _TEXT.map(lambda t: "'" + t.replace("'", "\\'") + "'"))),
                       max_size=4)),
))
def test_whatever_both_accept_they_read_alike(text: str) -> None:
    """Where libpq and `cdc.dsn` both accept a string, they read the same keywords from it; `cdc.dsn` accepts
    nothing libpq refuses."""
    reference = conninfo_parse(text)
    try:
        ours = dict(dsn.parse(text).params)
    except dsn.DsnError:
        return  # stricter than libpq on purpose (ports, an @ in a host or database name)
    assert reference is not None, text
    assert ours == reference, text
