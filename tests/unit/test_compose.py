"""compose/ checked as far as possible without a Docker engine: files parse, services, ports and variables agree
with the settings."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cdc.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def spec() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_compose_has_the_broker_the_database_the_service_and_monitoring() -> None:
    assert set(spec()["services"]) == {"kafka", "postgres", "cdc", "prometheus", "grafana"}


def test_every_cdc_variable_is_a_setting() -> None:
    fields = {f"CDC_{name.upper()}" for name in Settings.model_fields}
    variables = set(spec()["services"]["cdc"]["environment"])
    assert variables <= fields, variables - fields


def test_ports_match_the_local_stack_defaults() -> None:
    def default(name: str) -> object:  # the declared default, whatever CDC_* this test runs under
        return Settings.model_fields[name].default

    services = spec()["services"]
    assert f"{default('pg_port')}:5432" in services["postgres"]["ports"]
    assert f"{str(default('kafka_bootstrap')).rsplit(':', 1)[1]}:9092" in services["kafka"]["ports"]
    assert f"{default('dashboard_port')}:8077" in services["cdc"]["ports"]


def test_the_database_allows_logical_decoding_and_the_service_points_at_it() -> None:
    services = spec()["services"]
    assert "wal_level=logical" in services["postgres"]["command"]
    env = services["cdc"]["environment"]
    for name in ("erp", "crm", "cdc_state"):
        assert any(value.endswith(f"/{name}") for value in env.values() if isinstance(value, str))
        assert f"CREATE DATABASE {name};" in (COMPOSE / "postgres-init.sql").read_text()
    assert env["CDC_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_the_database_admits_captures_replication_connections() -> None:
    postgres = spec()["services"]["postgres"]
    assert "max_wal_senders=16" in postgres["command"]
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in postgres["volumes"]}
    assert mounted["./postgres-replication.sh"].startswith("/docker-entrypoint-initdb.d/")
    script = (COMPOSE / "postgres-replication.sh").read_text()
    assert 'echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"' in script


def test_prometheus_scrapes_the_service_and_grafana_has_the_dashboard() -> None:
    prometheus = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["cdc:8077"]
    assert json.loads((COMPOSE / "grafana" / "cdc-dashboard.json").read_text())["panels"]


def test_the_service_image_runs_the_service() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert 'CMD ["cdc", "run"]' in dockerfile and "HEALTHCHECK" in dockerfile
