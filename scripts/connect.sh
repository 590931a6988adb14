#!/usr/bin/env bash
# Kafka Connect (standalone) with the stock Debezium PostgreSQL connector, beside the local stack (docs/debezium.md):
#   scripts/connect.sh fetch     gather Connect and the Debezium plugin from Maven Central into $CDC_HOME/connect
#   scripts/connect.sh up        start Connect (REST on CDC_CONNECT_PORT, 18083) and wait until it answers
#   scripts/connect.sh down      stop it (offsets are flushed)
#   scripts/connect.sh status    its pid and each connector's state
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/bootstrap.sh
exec .venv/bin/python -m cdc.stack.connect "$@"
