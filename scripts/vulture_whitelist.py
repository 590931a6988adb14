"""Names vulture reports as unused that are used (scripts/test.sh runs `vulture`; settings in pyproject.toml).

Vulture reads code, not the ways this project uses it: fields read by templates, `asdict`/JSON or a library,
protocol callbacks, and helpers that only the integration tests call. Each name is here with where it is used; a
name that is really unused is removed from the code, not added here. Typer commands and callbacks and pydantic
validators are skipped through `ignore_decorators`, pydantic's `model_config` through `ignore_names`.
"""

# ruff: noqa
# fmt: off
_ = object()

# Fields of records decoded from the wire (pgoutput, pg_replication_slots, Debezium's source block): kept to mirror
# the format, read through asdict / JSON or by the tests.
type_modifier, replica_identity, cascade, restart_identity  # cdc/capture/pgoutput.py
restart_lsn, wal_status  # cdc/capture/slot.py
message_prefix  # cdc/capture/transactions.py
connector, txId, sequence, schema_version  # schemas/change_event.py
_.is_snapshot  # schemas/change_event.py, Source.is_snapshot (tests/unit/test_change_event.py)

# PostgreSQL type OIDs (cdc/values/vocabulary.py), kept beside the ones capture reads by
TEXT, BPCHAR, VARCHAR

# Serialised with dataclasses.asdict / model_dump (the progress file, capture lag, the dashboard's JSON and templates)
last_published_lsn  # cdc/capture/lag.py
skipped_transactions  # cdc/capture/progress.py
committed_source, consumed_rate, has_event, erp_filter, crm_filter, sync_only_coupled_overridden  # monitoring/model.py
crm_column, erp_value, crm_value  # cdc/monitoring/records.py, read by templates/record.html
destination_column  # cdc/orchestrator/duplicates.py, a field of NearMatch (set positionally)
saved_settings  # cdc/orchestrator/runs.py, a column of a jobs row
last_result_to_crm, last_result_to_erp  # cdc/state/couplings.py, columns of a couplings row
inserted  # cdc/state/jobs.py, Counts, read through Counts.as_dict()

# Settings fields read from CDC_* variables by pydantic-settings (cdc/settings.py)
erp_dsn, crm_dsn

# Read or called by a library
_.no_wrap  # rich's Column (cdc/cli/jobs.py)
_.capture_signals, _.should_exit  # uvicorn's Server (cdc/monitoring/server.py)
_.on_partitions_revoked, _.on_partitions_assigned  # aiokafka's ConsumerRebalanceListener (consumers/offsets.py)
trace  # the third argument of __aexit__ (cdc/orchestrator/workers.py)
__getattr__, __dir__  # module attributes by PEP 562 (consumers/__init__.py)

# Helpers the tests call (the Debezium integration test, the capture fixtures, the catalog test)
default_mapping_file  # cdc/mapping/load.py
_.put_connector, _.delete_connector, _.wait_running, postgres_connector  # cdc/stack/connect.py
_.to_wire, _.from_wire, decode_key  # schemas/change_event.py
