#!/usr/bin/env bash
# Vendor the pages' third-party browser assets (Leaflet, Leaflet.VectorGrid for vector tiles; Swagger UI for /docs) into web/static/vendor/, so the pages load nothing from
# another host: government intranets are often offline, and a CDN is a privacy and supply-chain risk.
#
# axe-core (a devDependency) stays in web/node_modules: only the accessibility tests inject it into pages.
# The versions and their sha512 integrity are pinned in web/package.json + web/package-lock.json; `npm ci`
# checks them. Idempotent: when web/static/vendor/ already holds the files for this lock file it exits at once.
# Usage: scripts/install_web_assets.sh [--force]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
VENDOR="$WEB/static/vendor"
STAMP="$VENDOR/.installed"
FILES=(leaflet/leaflet.js leaflet/leaflet.css leaflet/images/layers.png leaflet/LICENSE
  leaflet-vectorgrid/Leaflet.VectorGrid.bundled.min.js leaflet-vectorgrid/LICENSE
  swagger-ui/swagger-ui-bundle.js swagger-ui/swagger-ui.css swagger-ui/favicon-32x32.png
  swagger-ui/oauth2-redirect.html swagger-ui/oauth2-redirect.js swagger-ui/LICENSE)

want="$(sha256sum "$WEB/package-lock.json" "$0" | sha256sum | cut -d' ' -f1)"
if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  missing=0
  for f in "${FILES[@]}"; do [ -f "$VENDOR/$f" ] || missing=1; done
  [ "$missing" -eq 0 ] && exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install_web_assets: npm is missing; install Node.js and npm (Debian: apt-get install npm), then rerun" >&2
  exit 1
fi

# --ignore-scripts: a vendored asset never needs to run code at install time.
npm ci --prefix "$WEB" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

rm -rf "$VENDOR"
mkdir -p "$VENDOR/leaflet/images" "$VENDOR/leaflet-vectorgrid" "$VENDOR/swagger-ui"
dist="$WEB/node_modules/leaflet/dist"
cp "$dist/leaflet.js" "$dist/leaflet.css" "$VENDOR/leaflet/"
cp "$dist"/images/*.png "$VENDOR/leaflet/images/"
cp "$WEB/node_modules/leaflet/LICENSE" "$VENDOR/leaflet/LICENSE"
vg="$WEB/node_modules/leaflet.vectorgrid"
cp "$vg/dist/Leaflet.VectorGrid.bundled.min.js" "$VENDOR/leaflet-vectorgrid/"
sed -n "/BEER-WARE LICENSE/,/^---/p" "$vg/README.md" >"$VENDOR/leaflet-vectorgrid/LICENSE"  # the package ships its licence in the README
swagger="$WEB/node_modules/swagger-ui-dist"
cp "$swagger/swagger-ui-bundle.js" "$swagger/swagger-ui.css" "$swagger/favicon-32x32.png" \
  "$swagger/oauth2-redirect.html" "$swagger/oauth2-redirect.js" "$swagger/LICENSE" "$VENDOR/swagger-ui/"
echo "$want" >"$STAMP"
version() { node -p "require('$WEB/node_modules/$1/package.json').version" 2>/dev/null || echo '(version unknown)'; }
echo "install_web_assets: Leaflet $(version leaflet), Leaflet.VectorGrid $(version leaflet.vectorgrid), Swagger UI $(version swagger-ui-dist) -> web/static/vendor/"
