#!/usr/bin/env bash
# Installs what the project needs: Python packages into .venv (from PyPI) and, with --browser, Debian's Chromium
# for the dashboard's browser test. The local stack installs its own Debian packages (PostgreSQL 15, a JRE, Maven)
# on the first `cdc stack up` when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=0
[ "${1:-}" = "--browser" ] && browser=1

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python >= 3.11 is required (found: $("$python" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras="dev"
[ $browser -eq 1 ] && extras="dev,browser"
# setup.py builds capture's optional C twins (docs/capture.md): a change to them installs (builds) again
stamp=.venv/.installed-$(cat pyproject.toml setup.py cdc/capture/_tuples.c cdc/topics/_murmur2.c | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || { [ $browser -eq 1 ] && ! grep -q browser "$stamp"; }; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[$extras]"
  rm -f .venv/.installed-* && echo "$extras" > "$stamp"
fi

if [ $browser -eq 1 ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "warning: /usr/bin/chromium missing: the browser test will be skipped" >&2
  fi
fi
