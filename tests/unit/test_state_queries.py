import re
from importlib import resources

import pytest

from cdc.state import migrate, queries

STORES = ["couplings", "jobs", "job_errors", "parking", "offsets", "mapping_settings", "record_log",
          "migrate"]


def test_parse_splits_named_blocks_and_keeps_comments_inside():
    q = queries.parse("""
-- a file comment
-- name: first
SELECT 1

-- name: second
-- what it does
UPDATE t SET a = $1
WHERE b = $2
""")
    assert list(q) == ["first", "second"]
    assert q["first"] == "SELECT 1"
    assert q.second == "-- what it does\nUPDATE t SET a = $1\nWHERE b = $2"


def test_parse_rejects_duplicates_empty_blocks_and_stray_sql():
    with pytest.raises(ValueError, match="defined twice"):
        queries.parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2")
    with pytest.raises(ValueError, match="'b' is empty"):
        queries.parse("-- name: a\nSELECT 1\n-- name: b\n\n")
    with pytest.raises(ValueError, match="before the first"):
        queries.parse("SELECT 0\n-- name: a\nSELECT 1")
    with pytest.raises(ValueError, match="lower-case identifier"):
        queries.parse("-- name: Bad-Name\nSELECT 1")


def test_a_missing_query_names_the_file():
    q = queries.parse("-- name: a\nSELECT 1", "x.sql")
    with pytest.raises(KeyError, match="x.sql has no query named 'b'"):
        q["b"]
    with pytest.raises(AttributeError, match="x.sql has no query named 'b'"):
        getattr(q, "b")  # noqa: B009


def test_queries_may_be_named_like_mapping_methods():
    q = queries.parse("-- name: get\nSELECT 1\n-- name: keys\nSELECT 2\n-- name: items\nSELECT 3")
    assert (q.get, q.keys, q.items) == ("SELECT 1", "SELECT 2", "SELECT 3")
    assert "get" in q and len(q) == 3


def test_load_reads_each_file_once():
    assert queries.load("jobs") is queries.load("jobs")


@pytest.mark.parametrize("store", STORES)
def test_every_query_a_store_uses_exists(store):
    source = resources.files("cdc.state").joinpath(f"{store}.py").read_text()
    used = set(re.findall(r"\b_Q\.(\w+)", source))
    assert used, f"{store}.py uses no named query"
    assert used <= set(queries.load(store)), used - set(queries.load(store))


def test_rows_affected_reads_command_tags():
    assert queries.rows_affected("DELETE 3") == 3
    assert queries.rows_affected("UPDATE 0") == 0
    assert queries.rows_affected("INSERT 0 12") == 12


def test_jsonb_round_trip_and_codec_tolerance():
    assert queries.jsonb_in(None) is None
    assert queries.jsonb_out(queries.jsonb_in({"b": 1, "a": [1, "x"]})) == {"a": [1, "x"], "b": 1}
    assert queries.jsonb_out({"already": "decoded"}) == {"already": "decoded"}


def test_system_param_refuses_unknown_systems():
    assert queries.system_param("crm") == "crm"
    with pytest.raises(ValueError, match="system must be one of"):
        queries.system_param("sap")


def test_migrations_are_numbered_from_one_without_gaps():
    versions = [m.version for m in migrate.available()]
    assert versions == list(range(1, len(versions) + 1))
    assert migrate.available()[0].name == "initial"
