"""The README's two screenshots: the public project map (/) and the planner map (/planner) on the demo data.

Builds the Gaoming demo into a temporary GeoPackage, makes a planner token, serves the app with uvicorn on a free
loopback port, opens both pages in headless Chromium through Playwright and writes docs/img/public-map.png and
docs/img/planner-map.png, downscaled to keep each file small. Nothing is loaded from another host (no basemap).

Usage: python scripts/screenshots.py [--chromium /usr/bin/chromium] [--out docs/img]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, ViewportSize, sync_playwright

from geoplan.testing import ServerFailed, app_command, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT: ViewportSize = {"width": 1200, "height": 750}
WIDTH = 900
"""Width of the written PNGs in pixels (the page is shot at the viewport's size, then downscaled)."""
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def geoplan(*args: str, env: dict[str, str]) -> str:
    """Run a `geoplan` command in this interpreter; returns its standard output."""
    done = subprocess.run([sys.executable, "-m", "geoplan", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"geoplan {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def save(page: Page, path: Path) -> None:
    """Screenshot the page, downscale it to WIDTH and write it as an optimised PNG."""
    page.wait_for_timeout(800)  # let Leaflet's fade and zoom animations finish
    with Image.open(io.BytesIO(page.screenshot())) as image:
        size = (WIDTH, round(image.height * WIDTH / image.width))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KiB")


def shoot(base: str, token: str, out: Path, chromium: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            # Nothing but the app itself: a request to any other host would make the picture depend on the network.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
            page.set_default_timeout(300_000)  # the planner's first overlap run may take a while on a slow machine

            page.goto(base + "/")
            page.wait_for_selector("body[data-ready='true']")
            page.wait_for_function("() => document.querySelectorAll('#gp-list li').length > 0")
            save(page, out / "public-map.png")

            page.goto(base + "/planner")
            page.fill("#gp-token", token)
            page.click("#gp-login button[type=submit]")
            page.wait_for_selector("body[data-planner='ready']")
            save(page, out / "planner-map.png")
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geoplan-shots-") as tmp:
        store = Path(tmp) / "gaoming.gpkg"
        env = {**os.environ, "GEOPLAN_STORE": str(store), "GEOPLAN_LAYERS_DIR": str(ROOT / "layers")}
        env["GEOPLAN_BASEMAP"] = "none"
        geoplan("demo", env=env)
        token = geoplan("token", "create", "--role", "planner", "--name", "screenshots", env=env).split()[-1]
        port = free_port()
        log_path = Path(tmp) / "uvicorn.log"
        try:
            with serving(
                app_command(port), port=port, env=env, log_path=log_path, name="uvicorn", timeout=60, cwd=ROOT
            ) as base:
                shoot(base, token, args.out.resolve(), args.chromium)
        except ServerFailed as exc:
            sys.exit(str(exc))


if __name__ == "__main__":
    main()
