#!/usr/bin/env bash
# The README's test command. Sets up everything on a fresh Debian/Ubuntu machine with
# Python 3.11+, then runs ruff, mypy --strict and the whole pytest suite.
#   - as root: installs the Debian packages the integration tests need (real mosquitto,
#     influxd, victoria-metrics, PostgreSQL, Chromium and a CJK font for its screenshots) and
#     requires them (no skips), and a C compiler with Python's headers for the hub's native
#     line-protocol encoder (hub/series/_lines.c);
#   - without root: installs nothing system-wide, and pytest names every integration
#     test it skipped and why (pytest -ra).
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k wire -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEBIAN_PACKAGES=(gcc python3-dev systemd mosquitto mosquitto-clients influxdb influxdb-client victoria-metrics postgresql chromium fonts-wqy-zenhei python3-venv nats-server)
# Node-RED, a comparator of `gridsentinel bench ingest` (installed by the bench with npm), needs node and
# npm; asked for only when npm is missing, because a Node.js from elsewhere (NodeSource) brings its own.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_PACKAGES+=(nodejs npm)
fi

missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    missing=()
  else
    echo "== not root: cannot install ${missing[*]}; the integration tests that need them will be skipped (see the summary)"
  fi
fi
# Packages present (or just installed) => integration tests must run, never skip.
if ((${#missing[@]} == 0)); then
  export GS_REQUIRE_SERVERS=1
fi
# Services installed from Debian packages may auto-start on their default ports; the tests
# start their own servers on free ports and do not need those.

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== installing gridsentinel[all] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[all]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "$@"
