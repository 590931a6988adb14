"""`cdc mappings validate` and `cdc mappings show`, run as a user runs them, against fresh demo databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdc.settings import DEFAULT_MAPPING_FILE

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "mappings"
UNREACHABLE = "postgresql://cdc:cdc@127.0.0.1:1/nowhere"


def cdc(*args: str, erp: str, crm: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)  # keeps CDC_* addresses (ports, DSNs) of the stack under test
    env.update(CDC_ERP_DSN=erp, CDC_CRM_DSN=crm)
    return subprocess.run([sys.executable, "-m", "cdc", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def live(demo_databases: dict[str, str]) -> dict[str, str]:
    return demo_databases


def test_the_default_file_fits_the_demo_schemas(live: dict[str, str]):
    result = cdc("mappings", "validate", **live)
    assert result.returncode == 0, result.stderr
    checked, ok = result.stdout.splitlines()
    assert checked.startswith("checked against live schemas (erp 127.0.0.1:")
    assert ok == f"ok: 7 mappings in {DEFAULT_MAPPING_FILE}"
    assert result.stderr == ""


def test_without_databases_only_the_file_is_checked():
    result = cdc("mappings", "validate", str(DEFAULT_MAPPING_FILE), erp=UNREACHABLE, crm=UNREACHABLE)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("databases not reachable: checked the file only (ERP database at 127.0.0.1:1/")
    assert "cdc:cdc" not in first
    assert second == f"ok: 7 mappings in {DEFAULT_MAPPING_FILE}"


@pytest.mark.parametrize(("fixture", "expected"), [
    ("yaml_syntax_error.yaml", "{path}:6:8: YAML syntax error: while parsing a flow mapping: expected ',' or '}}', "
                               "but got ':'"),
    ("bad_direction.yaml", "{path}:5:16: mapping CUSTOMER, direction: input should be 'both', 'to_crm' or "
                           "'to_erp' (got 'sideways')"),
    ("unknown_lookup.yaml", "{path}: mapping CUSTOMER, field salesperson_code <-> ownerid: lookup to unknown "
                            "mapping 'SALESPERSONS'"),
    ("cycle.yaml", "{path}: mappings depend on each other in a cycle: CUSTOMER -> CONTACTS -> CUSTOMER"),
])
def test_a_broken_file_is_one_clear_line_and_exit_code_2(live: dict[str, str], fixture: str, expected: str):
    path = BROKEN / fixture
    result = cdc("mappings", "validate", str(path), **live)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [expected.format(path=path)]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("fixture", "expected"), [
    ("unknown_column.yaml", "{path}:12:15: mapping CUSTOMER, field nickname <-> name: erp column 'nickname' not found "
                            "in table customer"),
    ("filter_unknown_column.yaml", "{path}:10:15: mapping CUSTOMER, erp filter on is_blocked: column not found in "
                                   "table customer"),
    ("type_mismatch.yaml", "{path}:13:9: mapping RESOURCE-PRODUCT, field blocked <-> defaultuomscheduleid: erp column "
                           "blocked (bool) and crm column defaultuomscheduleid (uuid) have incompatible types"),
])
def test_a_file_that_does_not_fit_the_live_schemas_is_one_line_each(live: dict[str, str], fixture: str,
                                                                     expected: str):
    path = BROKEN / fixture
    result = cdc("mappings", "validate", str(path), **live)
    assert result.returncode == 2
    [checked] = result.stdout.splitlines()
    assert checked.startswith("checked against live schemas")
    assert result.stderr.splitlines() == [expected.format(path=path)]


def test_live_problems_are_not_found_without_the_databases():
    result = cdc("mappings", "validate", str(BROKEN / "type_mismatch.yaml"), erp=UNREACHABLE, crm=UNREACHABLE)
    assert result.returncode == 0
    assert "checked the file only" in result.stdout


def test_a_missing_file_is_one_line():
    result = cdc("mappings", "validate", "no/such/file.yaml", erp=UNREACHABLE, crm=UNREACHABLE)
    assert (result.returncode, result.stderr) == (2, "no/such/file.yaml: no such mapping file\n")


def test_an_injection_looking_table_name_is_refused(tmp_path: Path):
    path = tmp_path / "mappings.yaml"
    path.write_text((BROKEN / "unknown_column.yaml").read_text().replace("table: customer",
                                                                         "table: 'customer; drop table x'"))
    result = cdc("mappings", "validate", str(path), erp=UNREACHABLE, crm=UNREACHABLE)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:6:14: mapping CUSTOMER, erp.table: 'customer; drop table x' is not a plain SQL identifier "
        "(letters, digits, underscore; at most 63)"]


def test_show_lists_the_mappings_in_dependency_order():
    result = cdc("mappings", "show", "--json", erp=UNREACHABLE, crm=UNREACHABLE)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS",
                                         "RESOURCE-PRODUCT", "ITEM-PRODUCT"]
    customer = rows[3]
    assert customer == {
        "name": "CUSTOMER", "erp_table": "public.customer", "crm_table": "public.account", "direction": "both",
        "sync_only_coupled": True, "conflict": "newest-wins", "deletion": "uncouple", "after_match": "source",
        "depends_on": ["SALESPEOPLE", "CURRENCY"],
        "filters": {"erp": {"field": "blocked", "op": "ne", "value": "all"},
                    "crm": {"all": [{"field": "statecode", "op": "eq", "value": 0},
                                    {"field": "customertypecode", "op": "eq", "value": 3}]}},
    }

    table = cdc("mappings", "show", erp=UNREACHABLE, crm=UNREACHABLE)
    assert table.returncode == 0, table.stderr
    positions = [table.stdout.index(r["name"]) for r in rows]
    assert positions == sorted(positions)
    assert "crm: isdisabled eq false and islicensed eq true" in table.stdout


def test_show_refuses_a_broken_file():
    result = cdc("mappings", "show", str(BROKEN / "cycle.yaml"), erp=UNREACHABLE, crm=UNREACHABLE)
    assert result.returncode == 2
    assert "cycle: CUSTOMER -> CONTACTS -> CUSTOMER" in result.stderr
