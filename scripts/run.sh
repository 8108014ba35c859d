#!/usr/bin/env bash
# The main job on a fresh machine: install geoplan, build the Gaoming demo store (embedded GeoPackage, no
# database server) unless it exists, and list its layers.
# Usage: scripts/run.sh [--rebuild]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
GEOPLAN="$ROOT/.venv/bin/geoplan"
export GEOPLAN_STORE="${GEOPLAN_STORE:-$ROOT/data/gaoming.gpkg}"
if [ "${1:-}" = "--rebuild" ] || [ ! -f "$GEOPLAN_STORE" ]; then
  rm -f "$GEOPLAN_STORE"
  "$GEOPLAN" demo
else
  "$GEOPLAN" layers
fi
