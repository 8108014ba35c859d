#!/usr/bin/env bash
# Create .venv (once) and install geoplan into it, editable, with the given extras (e.g. "dev").
# Then vendor the pages' browser assets (Leaflet, from npm) into web/static/vendor/.
# Sourced by run.sh and test.sh so both start from the same, complete environment on a fresh machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PYTHON" -m venv "$ROOT/.venv"
fi
SPEC="$ROOT"
[ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
"$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/.venv/bin/python" -m pip install --quiet -e "$SPEC"
"$ROOT/scripts/install_web_assets.sh"
