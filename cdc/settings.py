"""The one settings object: built once by the CLI from `CDC_*` environment variables and passed down."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cdc import dsn as connection_string
from cdc.pair import SYSTEMS, Pair
from cdc.pair import System as System  # re-exported until consumers/worker.py imports it from cdc.pair

DEFAULT_MAPPING_FILE = Path(__file__).parent / "mapping" / "default.yaml"

TOPIC_PATTERN = "{prefix}.{system}.{table}"
TOPIC_FIELDS = frozenset({"prefix", "system", "schema", "table"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDC_", frozen=True, extra="ignore")

    home: Path = Field(Path(".cdc"), description="Where the local stack keeps its data, logs and jars.")

    # Local PostgreSQL cluster (the embedded default). Explicit DSNs below override it per database.
    pg_host: str = Field("127.0.0.1", description='Address of the local PostgreSQL cluster.')
    pg_port: int = Field(
        15432, description="Port of the local PostgreSQL cluster (not 5432, and below the kernel's ephemeral range).")
    pg_user: str = Field("cdc", description='Superuser of the local cluster.')
    pg_password: SecretStr | None = Field(None, description=(
        "Its password (never printed); default: the one generated for this installation, kept in "
        "`<CDC_HOME>/pgpass` (mode 0600)."))
    erp_dsn: SecretStr | None = Field(None,
        description="DSN of the ERP database; default: the local cluster's `CDC_ERP_DATABASE`.")
    crm_dsn: SecretStr | None = Field(None,
        description="DSN of the CRM database; default: the local cluster's `CDC_CRM_DATABASE`.")
    state_dsn: SecretStr | None = Field(None,
        description='DSN of the state database (couplings, jobs, errors, offsets).')
    erp_database: str = Field("erp", description='ERP database name on the local cluster.')
    crm_database: str = Field("crm", description='CRM database name on the local cluster.')
    state_database: str = Field("cdc_state", description='State database name on the local cluster.')

    # Local Kafka broker (the embedded default).
    kafka_bootstrap: str = Field("127.0.0.1:19092", description='Kafka bootstrap servers.')
    kafka_controller_port: int = Field(19093, description='KRaft controller port of the local broker.')
    kafka_heap: str = Field("768m", description='JVM heap of the local broker.')
    topic_prefix: str = Field("cdc",
        description='Topics are `<prefix>.<system>.<table>`; also names replication slots.')
    erp_topic: str = Field(TOPIC_PATTERN, description=(
        "Topic of each ERP table, a pattern of `{prefix}`, `{system}`, `{schema}` and `{table}`. For topics a "
        "Debezium connector writes: `<its topic.prefix>.{schema}.{table}` (docs/debezium.md)."))
    crm_topic: str = Field(TOPIC_PATTERN, description="Topic of each CRM table, as `CDC_ERP_TOPIC`.")
    topic_names: dict[str, str] = Field(default_factory=dict, description=(
        'Topics of single tables, over the patterns: JSON `{"erp.customer": "legacy.customers"}`.'))
    topic_partitions: int = Field(6, description='Partitions of each topic created by the service.')
    consumer_group: str = Field("cdc-sync", description='Consumer group of the workers.')
    connect_port: int = Field(18083, description=(
        'REST port of the local Kafka Connect that runs a Debezium connector (`scripts/connect.sh`, '
        'docs/debezium.md).'))
    connect_heap: str = Field("512m", description='JVM heap of the local Kafka Connect.')

    mapping_file: Path = Field(DEFAULT_MAPPING_FILE, description='The mapping file (YAML).')

    # Capture
    capture_batch_changes: int = Field(20_000, gt=0, description=(
        'Most events capture has published and the broker not yet acknowledged; past it capture reads no further '
        'until acknowledgements come (bounds its memory, and what a crash publishes again).'))
    heartbeat_interval: float = Field(10.0, description='Seconds between heartbeats that keep an idle slot moving.')
    replication_origin_prefix: str = Field("cdc_applier",
        description="Origins of the sync's own writes (capture drops them; so does the worker, when Debezium "
                    "reports them).")

    # Worker
    worker_batch_size: int = Field(2000, description='Records a worker takes per batch.')
    worker_linger_ms: int = Field(30, ge=0, le=1000, description=(
        "Milliseconds a worker keeps gathering a batch that is not full: a trickle of changes is decided together "
        "(a batch's statements cost the same for one change or a thousand), at the price of that much latency."))
    worker_fetch_wait_ms: int = Field(50, ge=1, le=5000, description=(
        "Longest a worker's fetch waits at the broker for new records (Kafka's fetch.max.wait.ms). A partition "
        "whose records the worker still holds is left out of the fetch in flight, and its next records are asked "
        "for only when that fetch returns: the wait bounds their extra latency (Kafka's 500 ms: p50 511 ms at 500 "
        "changes/s, 50 ms: 116 ms). Idle, each worker asks the broker once per wait."))
    live_job_window_seconds: int = Field(3600,
        description='Live processing is recorded as one job per mapping and direction per window.')
    record_log_keep: int = Field(1_000_000, ge=0, description=(
        "Decisions kept in the record log (the dashboard's record lookup); workers prune older ones every minute."))
    worker_instance: str | None = Field(None, description=(
        "Static consumer-group membership (group.instance.id): a worker restarted under the same name takes its "
        "partitions back at once instead of after the session timeout. Unique per worker process."))
    worker_session_timeout_ms: int = Field(10_000, description=(
        'Milliseconds without a heartbeat after which a worker that died is dropped from the group.'))

    # Dashboard
    dashboard_host: str = Field("127.0.0.1",
        description='Dashboard bind address (loopback by default; elsewhere needs a token).')
    dashboard_port: int = Field(8077, description='Dashboard port.')
    dashboard_token: SecretStr | None = Field(None,
        description='Bearer token required when the dashboard binds a non-loopback address.')
    dashboard_ready_max_lag: int = Field(10_000, description="Consumer lag (messages) above which /readyz fails.")

    log_format: Literal["console", "json"] = Field("console", description='`console` or `json` (service mode).')
    log_level: str = Field("info", description='Log level.')
    stack_timeout: float = Field(90.0, description='Seconds `cdc stack up` waits for each service.')

    @field_validator("erp_dsn", "crm_dsn", "state_dsn", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("erp_dsn", "crm_dsn", "state_dsn")
    @classmethod
    def _parses(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused at start-up, in one line that quotes nothing of it, when libpq would not parse it."""
        if value is not None:
            try:
                connection_string.canonical(value.get_secret_value())
            except connection_string.DsnError as exc:
                raise ValueError(f"not a valid PostgreSQL connection string: {exc}") from None
        return value

    def local_password(self) -> str:
        """CDC_PG_PASSWORD, else the one generated for this installation (`<CDC_HOME>/pgpass`)."""
        if self.pg_password is not None:
            return self.pg_password.get_secret_value()
        from cdc.stack import password

        return password.current(self.home)

    def local_dsn(self, database: str) -> str:
        return connection_string.ConnInfo((
            ("host", self.pg_host), ("port", str(self.pg_port)), ("user", self.pg_user),
            ("password", self.local_password()), ("dbname", database))).uri()

    def dsn(self, database: Literal["erp", "crm", "state"]) -> str:
        """The DSN of one of the three databases: explicit `CDC_<DB>_DSN` (either libpq syntax, given to asyncpg as
        an encoded URI) or the local stack's."""
        explicit: SecretStr | None = getattr(self, f"{database}_dsn")
        if explicit is not None:
            return connection_string.canonical(explicit.get_secret_value())
        return self.local_dsn(getattr(self, f"{database}_database"))

    def topic(self, system: System, table: str, schema: str = "public") -> str:
        """The topic carrying the changes of `system`'s `table` (in `schema`, as the mapping file names it)."""
        named = self.topic_names.get(f"{system}.{table}")
        if named is not None:
            return named
        pattern = Pair(self.erp_topic, self.crm_topic)[system]
        return pattern.format(prefix=self.topic_prefix, system=system, schema=schema, table=table)

    @field_validator("erp_topic", "crm_topic")
    @classmethod
    def _topic_pattern(cls, pattern: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
        except ValueError as exc:
            raise ValueError(f"topic pattern {pattern!r}: {exc}") from None
        unknown = sorted(names - TOPIC_FIELDS)
        if unknown:
            raise ValueError(f"topic pattern {pattern!r} may use {{prefix}}, {{system}}, {{schema}} and {{table}}, "
                             f"not {{{unknown[0]}}}")
        return pattern

    @field_validator("topic_names")
    @classmethod
    def _topic_names(cls, names: dict[str, str]) -> dict[str, str]:
        for table, topic in names.items():
            system, _, name = table.partition(".")
            if system not in SYSTEMS or not name or not topic:
                raise ValueError(f"topic name for {table!r}: keys are <erp|crm>.<table>, values topic names")
        return names

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.dead-letter"


def problems(error: ValidationError) -> list[str]:
    """Why the CDC_* variables do not make settings, one line per variable, without any value (a value may be a
    secret, or hold one)."""
    lines = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"CDC_{field.upper()}: {message}" if field else message)
    return list(dict.fromkeys(lines))
