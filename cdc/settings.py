"""The one settings object: built once by the CLI from `CDC_*` environment variables and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

System = Literal["erp", "crm"]
SYSTEMS: tuple[System, System] = ("erp", "crm")

DEFAULT_MAPPING_FILE = Path(__file__).parent / "mapping" / "default.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDC_", frozen=True, extra="ignore")

    home: Path = Field(Path(".cdc"), description="Where the local stack keeps its data, logs and jars.")

    # Local PostgreSQL cluster (the embedded default). Explicit DSNs below override it per database.
    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "cdc"
    pg_password: SecretStr = SecretStr("cdc")
    erp_dsn: SecretStr | None = None
    crm_dsn: SecretStr | None = None
    state_dsn: SecretStr | None = None
    erp_database: str = "erp"
    crm_database: str = "crm"
    state_database: str = "cdc_state"

    # Local Kafka broker (the embedded default).
    kafka_bootstrap: str = "127.0.0.1:59092"
    kafka_controller_port: int = 59093
    kafka_heap: str = "768m"
    topic_prefix: str = "cdc"
    topic_partitions: int = 6
    consumer_group: str = "cdc-sync"

    mapping_file: Path = DEFAULT_MAPPING_FILE

    # Capture
    capture_batch_changes: int = 5000
    capture_poll_interval: float = 0.05
    heartbeat_interval: float = 10.0
    replication_origin_prefix: str = "cdc_applier"

    # Worker
    worker_batch_size: int = 2000
    live_job_window_seconds: int = 3600

    # Dashboard
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8077
    dashboard_token: SecretStr | None = None
    dashboard_ready_max_lag: int = Field(10_000, description="Consumer lag (messages) above which /readyz fails.")

    log_format: Literal["console", "json"] = "console"
    log_level: str = "info"
    stack_timeout: float = 90.0

    def local_dsn(self, database: str) -> str:
        password = self.pg_password.get_secret_value()
        return f"postgresql://{self.pg_user}:{password}@{self.pg_host}:{self.pg_port}/{database}"

    def dsn(self, database: Literal["erp", "crm", "state"]) -> str:
        """The DSN of one of the three databases: explicit `CDC_<DB>_DSN` or the local stack's."""
        explicit: SecretStr | None = getattr(self, f"{database}_dsn")
        if explicit is not None:
            return explicit.get_secret_value()
        return self.local_dsn(getattr(self, f"{database}_database"))

    def topic(self, system: str, table: str) -> str:
        return f"{self.topic_prefix}.{system}.{table}"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.dead-letter"

    @property
    def replay_control_topic(self) -> str:
        return f"{self.topic_prefix}.control"
