#!/usr/bin/env bash
# Install what the dashboard's browser tests need: Debian's chromium (Playwright drives it through
# executable_path; no browser download) and the Python packages of the `browser` extra.
# Usage: bash .ci/browser-deps.sh [PYTHON]   (default: the python on PATH)
set -euo pipefail
PYTHON="${1:-python}"
if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
    apt-get clean  # the downloaded packages: disk is short on some CI machines
fi
"$PYTHON" -m pip install -q "solara[assets]==1.58.2" "ipyvuetify<3" "ipyvue<3" \
    "playwright>=1.40" "pytest-playwright>=0.4"
chromium --version 2>/dev/null || true
"$PYTHON" -c "import playwright, solara; print('solara', solara.__version__)"
