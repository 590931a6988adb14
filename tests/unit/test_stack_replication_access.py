"""The local stack's pg_hba.conf admits capture's replication connections (`all` does not match them)."""

from __future__ import annotations

from pathlib import Path

from cdc.settings import Settings
from cdc.stack.postgres import LocalPostgres

WITHOUT = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n# host replication all 127.0.0.1/32 trust\n"


def stack(home: Path, hba: str, **settings: object) -> LocalPostgres:
    postgres = LocalPostgres(Settings(home=home, **settings))
    postgres.data_dir.mkdir(parents=True)
    (postgres.data_dir / "pg_hba.conf").write_text(hba)
    return postgres


def test_a_replication_line_is_added_for_the_stacks_address_when_there_is_none(tmp_path: Path) -> None:
    postgres = stack(tmp_path, WITHOUT, pg_user="sync", pg_host="127.0.0.1")
    postgres._allow_replication()
    postgres._allow_replication()  # once only
    lines = (postgres.data_dir / "pg_hba.conf").read_text().splitlines()
    assert lines[:3] == WITHOUT.splitlines()
    assert [line for line in lines if line.startswith("host replication")] == [
        "host replication sync 127.0.0.1/32 scram-sha-256"]


def test_existing_replication_lines_are_left_alone(tmp_path: Path) -> None:
    hba = WITHOUT + "host replication all ::1/128 scram-sha-256\n"
    postgres = stack(tmp_path, hba)
    postgres._allow_replication()
    assert (postgres.data_dir / "pg_hba.conf").read_text() == hba
