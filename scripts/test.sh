#!/usr/bin/env bash
# The test command: set up, bring the local stack up, run every test tier, bring the stack down.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --browser || exit $?
export PATH="$PWD/.venv/bin:$PATH"

# Lint (settings in pyproject.toml): fast, before the stack.
ruff check --quiet cdc consumers schemas tests bench scripts || { echo "error: ruff found problems (see above)" >&2; exit 1; }
# The layers (docs/architecture.md, "Layers"): fast, and before the stack, so a broken contract fails at once.
lint-imports --no-cache --no-logo || { echo "error: an import breaks the layers' contracts (see above)" >&2; exit 1; }
# Dead code (settings in pyproject.toml, false positives in scripts/vulture_whitelist.py).
vulture || { echo "error: vulture found unused code (see above): remove it, or whitelist a false positive" >&2; exit 1; }

if [ "${CDC_TEST_BACKEND:-local}" = "local" ]; then
  cdc stack up || { echo "error: the local stack did not come up" >&2; exit 3; }
  trap 'cdc stack down >/dev/null 2>&1' EXIT
else
  bash scripts/bootstrap.sh && .venv/bin/pip install -q -e ".[containers]"
fi

# The fault suite last: it restarts the broker and PostgreSQL under everything else.
if [ $# -eq 0 ]; then
  set -- tests/unit tests/integration tests/acceptance tests/security tests/faults
fi
pytest -q -p no:cacheprovider "$@"
status=$?
[ $status -eq 5 ] && { echo "error: no tests were collected" >&2; exit 1; }
exit $status
