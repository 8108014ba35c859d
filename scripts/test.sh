#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages (PostgreSQL + PostGIS, Chromium, a CJK font, npm), the
# Python environment and the vendored web assets, style, type and import-contract checks, the manual (mkdocs),
# then pytest. The tests start their own throwaway PostGIS, and any skipped test fails the run
# (GEOPLAN_FAIL_ON_SKIP=1), so a missing PostGIS or browser cannot pass silently.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need_apt=()
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need_apt+=(postgresql postgresql-15-postgis-3)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)  # vendors Leaflet into web/static/vendor
fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei)  # Chinese glyphs in the browser
command -v gdalinfo >/dev/null 2>&1 || need_apt+=(gdal-bin)  # gdalinfo/ogrinfo open the stored layers as outside tools
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)  # renders the PDF report in its test
# QGIS's OAPIF provider as a real client of the OGC API (Debian's bindings load in the system Python only)
/usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || need_apt+=(python3-qgis qgis-providers)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need_apt[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

bash "$ROOT/scripts/bootstrap.sh" dev
PY="$ROOT/.venv/bin"
"$PY/ruff" check geoplan web scripts tests
"$PY/ruff" format --check geoplan web scripts tests
"$PY/mypy"
"$PY/lint-imports" --no-cache  # the layer contracts of pyproject.toml ([tool.importlinter])
"$PY/mkdocs" build --strict --quiet --site-dir "$(mktemp -d)"  # the manual builds, every link resolves
# One worker per core (pytest-xdist), each test file whole on one worker (its module fixtures and its order kept);
# the workers share one build of the demo store. GEOPLAN_TEST_WORKERS=0 runs in this process, e.g. to debug.
GEOPLAN_FAIL_ON_SKIP=1 "$PY/python" -m pytest -q -p no:cacheprovider \
  -n "${GEOPLAN_TEST_WORKERS:-auto}" --dist loadfile "$@"
