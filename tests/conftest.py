"""Shared fixtures. Integration and acceptance tests run against the real stack:

- by default the embedded local stack (`cdc stack up`, started here if it is not running);
- explicit services when `CDC_ERP_DSN` / `CDC_CRM_DSN` / `CDC_STATE_DSN` / `CDC_KAFKA_BOOTSTRAP` are set
  and `CDC_TEST_BACKEND=external`;
- testcontainers when `CDC_TEST_BACKEND=containers` (machines with Docker).
"""

from __future__ import annotations

import os

import pytest

from cdc.settings import Settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = os.environ.get("CDC_SLOW") == "1"
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path or "/acceptance/" in path or "/faults/" in path:
            item.add_marker(pytest.mark.integration)
        if "slow" in item.keywords and not slow:
            item.add_marker(pytest.mark.skip(reason="slow: set CDC_SLOW=1"))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()
