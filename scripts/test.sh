#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs them all.
# Used as is by .ci/run; safe to re-run (installs are idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian peers the end-to-end tests drive (tests/e2e/ starts them). Listed here so there
# is one place. graphite-web + graphite-carbon: the reference of test_graphite_compat.py;
# carbon-c-relay: the real sender of test_carbon_relay.py.
DEBIAN_PACKAGES=(prometheus prometheus-node-exporter graphite-web graphite-carbon carbon-c-relay)
if [ ${#DEBIAN_PACKAGES[@]} -gt 0 ]; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

python3 -m pip install -q -e '.[test]'
python3 -m ruff check .
python3 -m pytest -q "$@"
