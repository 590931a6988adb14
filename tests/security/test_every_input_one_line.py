"""Issue #19, items 5-8 and 10: whatever a user types or a database holds, a command ends in one line with the
right exit code (2 for a usage or configuration error) and the dashboard in a page or a 4xx — never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fresh_stack import ROOT

BIG = "9" * 30  # beyond 64 bits
UNREACHABLE = {"CDC_ERP_DSN": "postgresql://cdc@127.0.0.1:1/erp", "CDC_CRM_DSN": "postgresql://cdc@127.0.0.1:1/crm",
               "CDC_STATE_DSN": "postgresql://cdc@127.0.0.1:1/state"}


def cdc(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdc", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **UNREACHABLE, **env}, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == code, text
    assert "Traceback" not in text and len(result.stderr.strip().splitlines()) == 1, text
    return result.stderr.strip()


# ---------------------------------------------------------------- 6: mapping files

@pytest.fixture()
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mappings.fifo"
    os.mkfifo(path)
    yield path


def test_a_filter_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: 1\nmappings:\n  - name: A\n    erp: {table: t, key: k, filter: "
                    + "{and: [" * 2000 + "{field: a, op: eq, value: 1}" + "]}" * 2000 + "}\n")
    line = one_line(cdc("mappings", "validate", str(deep)), 2)
    assert "nested more than 64 levels deep" in line


def test_a_nul_byte_is_one_line(tmp_path: Path) -> None:
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"version: 1\x00\nmappings: []\n")
    assert "character #x0000" in one_line(cdc("mappings", "validate", str(nul)), 2)


def test_a_device_or_fifo_is_refused_at_once(fifo: Path) -> None:
    for path in ("/dev/zero", str(fifo)):
        started = time.monotonic()
        assert "not a regular file" in one_line(cdc("mappings", "validate", path, timeout=30), 2)
        assert time.monotonic() - started < 20


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as out:
        out.write("version: 1\nmappings:\n")
        for _ in range(30_000):
            out.write("  # " + "x" * 100 + "\n")
    assert "larger than 1024 KiB" in one_line(cdc("mappings", "validate", str(big)), 2)


def test_the_mapping_file_setting_is_held_to_the_same_limits() -> None:
    for args in (("mappings", "show"), ("jobs", "--mapping", "CUSTOMER"), ("full-sync", "--dry-run")):
        assert "not a regular file" in one_line(cdc(*args, CDC_MAPPING_FILE="/dev/zero"), 2)


# ---------------------------------------------------------------- 7: numbers

@pytest.mark.parametrize("args", [
    ("jobs", "-n", BIG), ("errors", "-n", BIG), ("retry", BIG), ("skip", BIG), ("retry", "0"), ("skip", "-1"),
    ("errors", "purge", "--older-than", f"{BIG}d"), ("errors", "purge", "--older-than", "40000w"),
    ("jobs", "-n", "²"),
])
def test_numbers_out_of_range_are_usage_errors(args: tuple[str, ...]) -> None:
    one_line(cdc(*args), 2)


# ---------------------------------------------------------------- 8: names and usage

@pytest.mark.parametrize("args", [
    ("jobs", "--mapping", "NOPE"), ("errors", "--mapping", "NOPE"), ("retry", "--all", "--mapping", "NOPE"),
    ("errors", "--open", "-m", "customer"),
])
def test_an_unknown_mapping_is_a_usage_error_not_an_empty_list(args: tuple[str, ...]) -> None:
    line = one_line(cdc(*args), 2)
    assert "no mapping named" in line and "CUSTOMER" in line


@pytest.mark.parametrize("args", [
    ("retry",), ("retry", "5", "--all"), ("retry", "5", "--mapping", "CUSTOMER"),
    ("uncouple", "--mapping", "CUSTOMER"), ("uncouple", "--mapping", "CUSTOMER", "--erp", "a", "--all"),
    ("full-sync",), ("sync", "--mapping", "CUSTOMER", "--full"),
])
def test_usage_errors_exit_2_in_every_command(args: tuple[str, ...]) -> None:
    one_line(cdc(*args), 2)


def test_bad_settings_are_one_line_each_without_their_values() -> None:
    result = cdc("jobs", CDC_PG_PORT="not-a-port", CDC_ERP_DSN="host=db password='Unclosed-Secret")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(line.split(":")[1].strip() for line in result.stderr.strip().splitlines()) == \
        ["CDC_ERP_DSN", "CDC_PG_PORT"]
    assert "Unclosed-Secret" not in result.stderr and "not-a-port" not in result.stderr


# ---------------------------------------------------------------- 10: cdc run

def test_cdc_run_stops_at_start_up_on_a_dashboard_configuration_error() -> None:
    started = time.monotonic()
    refused = cdc("run", timeout=60, CDC_DASHBOARD_HOST="0.0.0.0")
    line = one_line(refused, 2)
    assert "refusing to serve the dashboard on 0.0.0.0" in line and "CDC_DASHBOARD_TOKEN" in line
    assert "component started" not in refused.stdout + refused.stderr and "dashboard: http" not in refused.stderr
    assert time.monotonic() - started < 30
    short = one_line(cdc("run", CDC_DASHBOARD_HOST="0.0.0.0", CDC_DASHBOARD_TOKEN="fifteen-chars-x"), 2)
    assert "too short" in short
