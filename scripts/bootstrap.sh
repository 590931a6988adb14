#!/usr/bin/env bash
# Installs what the project needs into .venv (Python packages from PyPI). The local stack installs its own
# Debian packages (PostgreSQL 15, a JRE, Maven) on first `cdc stack up` when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python >= 3.11 is required (found: $("$python" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev${CDC_EXTRAS:+,$CDC_EXTRAS}]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
