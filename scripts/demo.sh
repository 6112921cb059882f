#!/usr/bin/env bash
# Installs the package into .venv and runs the demo on simulated alerts (no broker needed).
# Arguments go to `lsst-alerts demo`, e.g. ./scripts/demo.sh --out /tmp/demo --count 500
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/lsst-alerts demo "$@"
