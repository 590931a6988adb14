#!/usr/bin/env bash
# The test command: set up, bring the local stack up, run every test tier, bring the stack down.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --browser || exit $?
export PATH="$PWD/.venv/bin:$PATH"

cdc stack up || { echo "error: the local stack did not come up" >&2; exit 3; }
trap 'cdc stack down >/dev/null 2>&1' EXIT

pytest -q -p no:cacheprovider "$@"
status=$?
[ $status -eq 5 ] && { echo "error: no tests were collected" >&2; exit 1; }
exit $status
