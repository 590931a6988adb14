#!/usr/bin/env bash
# The main job on the embedded default: local stack, demo systems, full sync, live sync, dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/cdc demo "$@"
