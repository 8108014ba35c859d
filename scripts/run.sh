#!/usr/bin/env bash
# The main job on a fresh machine: install geoplan (and its vendored Leaflet), build the Gaoming demo store
# (embedded GeoPackage, no database server) unless it exists, then serve the web application.
# Usage: scripts/run.sh [--rebuild] [--port PORT] [--host HOST]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REBUILD=0
HOST="${GEOPLAN_HOST:-127.0.0.1}"
PORT="${GEOPLAN_PORT:-8000}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild) REBUILD=1 ;;
    --port) PORT="$2"; shift ;;
    --host) HOST="$2"; shift ;;
    *) echo "usage: scripts/run.sh [--rebuild] [--port PORT] [--host HOST]" >&2; exit 2 ;;
  esac
  shift
done
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q && apt-get install -y -q --no-install-recommends npm
fi
bash "$ROOT/scripts/bootstrap.sh"
GEOPLAN="$ROOT/.venv/bin/geoplan"
export GEOPLAN_STORE="${GEOPLAN_STORE:-$ROOT/data/gaoming.gpkg}"
if [ "$REBUILD" -eq 1 ] || [ ! -f "$GEOPLAN_STORE" ]; then
  rm -f "$GEOPLAN_STORE"
  "$GEOPLAN" demo
else
  "$GEOPLAN" layers
fi
echo "serving the Gaoming demo at http://$HOST:$PORT/  (OGC API: /ogc, API docs: /docs; Ctrl-C stops)"
exec "$GEOPLAN" serve --host "$HOST" --port "$PORT"
