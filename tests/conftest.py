"""Shared fixtures. Integration and acceptance tests run against the real stack:

- by default the embedded local stack (`cdc stack up`, started here if it is not running);
- explicit services when `CDC_ERP_DSN` / `CDC_CRM_DSN` / `CDC_STATE_DSN` / `CDC_KAFKA_BOOTSTRAP` are set
  and `CDC_TEST_BACKEND=external`;
- testcontainers when `CDC_TEST_BACKEND=containers` (machines with Docker).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest

from cdc.settings import Settings

BACKEND = os.environ.get("CDC_TEST_BACKEND", "local")

# The machine is shared (CI and benchmarks run beside other work): how fast examples are generated is no property
# of the code. Explicit per-test settings still apply on top of this profile.
hypothesis.settings.register_profile(
    "shared-machine", deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large])
hypothesis.settings.load_profile("shared-machine")

# Fixtures shared across test folders, registered once here (a test module takes them by name, without importing).
pytest_plugins = [
    "tests.integration.capture_fixtures",  # capture_env
    "tests.integration.dashboard_fixtures",  # world
    "tests.integration.mapping_fixtures",  # demo_databases
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = os.environ.get("CDC_SLOW") == "1"
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path or "/acceptance/" in path or "/faults/" in path:
            item.add_marker(pytest.mark.integration)
        if "slow" in item.keywords and not slow:
            item.add_marker(pytest.mark.skip(reason="slow: set CDC_SLOW=1"))
        if "/faults/" in path and BACKEND != "local":
            item.add_marker(pytest.mark.skip(reason="the fault suite restarts the local stack's processes"))


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    if BACKEND != "containers":
        yield Settings()
        return
    yield from _containers()


def _containers() -> Iterator[Settings]:
    """Kafka and PostgreSQL from testcontainers (machines with Docker); subprocesses inherit the addresses."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    postgres = PostgresContainer("postgres:15", username="cdc", password="cdc", dbname="postgres").with_command(
        "postgres -c wal_level=logical -c max_replication_slots=32 -c max_wal_senders=16")
    kafka = (KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft()
             .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
             .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
             .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"))
    with postgres, kafka:
        # capture streams over replication connections: the image's pg_hba.conf admits ordinary ones only
        postgres.exec(["sh", "-c", 'echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf" && '
                       "psql -U cdc -d postgres -c 'SELECT pg_reload_conf()'"])
        os.environ.update({"CDC_PG_HOST": postgres.get_container_host_ip(),
                           "CDC_PG_PORT": str(postgres.get_exposed_port(5432)), "CDC_PG_USER": "cdc",
                           "CDC_PG_PASSWORD": "cdc", "CDC_KAFKA_BOOTSTRAP": kafka.get_bootstrap_server()})
        yield Settings()
