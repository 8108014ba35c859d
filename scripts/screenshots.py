"""Screenshots of every page, on a desktop and on a phone, from the Gaoming demo; the README's two come from them.

Builds the demo into a temporary GeoPackage, makes a planner token (it opens the staff pages too) and an admin
token (the audit page), serves the app with uvicorn on a free loopback port and opens each page of `PAGES` in
headless Chromium at 1400×900 and 390×844. Every request to another host is aborted and counted: the pictures
show what an offline intranet shows. A map page whose map draws none of its own features fails the run (exit 1),
so a blank map is never shipped as a picture.

Writes <out>/<page>-desktop.png and <out>/<page>-phone.png, and with --readme docs/img/public-map.png and
docs/img/planner-map.png (downscaled to keep the repository small).

Usage: python scripts/screenshots.py [--out test-artifacts/screenshots] [--readme] [--chromium /usr/bin/chromium]
                                    [--only coverage,lifecircle]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, ViewportSize, sync_playwright

from geoplan.testing import ServerFailed, app_command, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
README_WIDTH = 900
"""Width of the README's PNGs in pixels (shot at the desktop size, then downscaled)."""
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The map's own features: what the page scripts draw from the data (class gp-feature), not the basemap under them.
DRAWN_FEATURES = """() => {
  const map = document.querySelector('.leaflet-container');
  if (!map) return null;
  const box = map.getBoundingClientRect();
  return [...map.querySelectorAll(".gp-feature:not(.gp-layer-district)")].filter((node) => {
    const r = node.getBoundingClientRect();
    return r.width + r.height > 0 && r.right > box.left && r.left < box.right && r.bottom > box.top
      && r.top < box.bottom;
  }).length;
}"""


@dataclass(frozen=True)
class PageShot:
    name: str
    path: str
    ready: str = ""
    """The selector the page shows once drawn ("" for a page without a script)."""
    token: str = ""
    """Which token the page asks for: "" (public), "planner" or "admin"."""


PAGES = (
    PageShot("public-map", "/", ready="body[data-ready='true']"),
    PageShot("layers", "/layers"),
    PageShot("layer-culture", "/layers/culture_facilities", ready="body[data-ready='true']"),
    PageShot("layer-roads", "/layers/roads", ready="body[data-ready='true']"),
    PageShot("layer-renewal", "/layers/renewal_zones", ready="body[data-ready='true']"),
    PageShot("planner-map", "/planner", ready="body[data-planner='ready']", token="planner"),
    PageShot("coverage", "/coverage", ready="body[data-coverage='ready']", token="planner"),
    PageShot("lifecircle", "/lifecircle", ready="body[data-lifecircle='ready']", token="planner"),
    PageShot("dashboard", "/dashboard", ready="body[data-dashboard='ready']", token="planner"),
    PageShot("audit", "/audit", ready="body[data-audit='loaded']", token="admin"),
    PageShot("ogc", "/ogc/collections"),
)


def geoplan(*args: str, env: dict[str, str]) -> str:
    """Run a `geoplan` command in this interpreter; returns its standard output."""
    done = subprocess.run([sys.executable, "-m", "geoplan", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"geoplan {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def open_page(page: Page, base: str, shot: PageShot, tokens: dict[str, str]) -> None:
    page.goto(base + shot.path)
    if shot.token:
        page.fill("#gp-token", tokens[shot.token])
        page.click("#gp-login button[type=submit]")
    if shot.ready:
        page.wait_for_selector(shot.ready)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)  # Leaflet's fade and zoom animations


def downscaled(png: bytes, path: Path) -> None:
    with Image.open(io.BytesIO(png)) as image:
        size = (README_WIDTH, round(image.height * README_WIDTH / image.width))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def shoot(
    base: str, tokens: dict[str, str], out: Path, readme: Path | None, chromium: str, pages: tuple[PageShot, ...]
) -> list[str]:
    """Every page at every size; returns the problems found (blank maps, requests to other hosts)."""
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for size, viewport in VIEWPORTS.items():
                context = browser.new_context(viewport=viewport, locale="zh-CN")
                context.set_default_timeout(60_000)  # the first overlap run may take minutes on a slow machine
                foreign: list[str] = []

                def route(route: object, foreign: list[str] = foreign) -> None:
                    url = route.request.url  # type: ignore[attr-defined]
                    if url.startswith(base):
                        route.continue_()  # type: ignore[attr-defined]
                    else:
                        foreign.append(url)
                        route.abort()  # type: ignore[attr-defined]

                context.route("**/*", route)
                for shot in pages:
                    page = context.new_page()  # a fresh tab: a token is kept per tab (sessionStorage)
                    print(f"{shot.path} ({size})", flush=True)
                    open_page(page, base, shot, tokens)
                    drawn = page.evaluate(DRAWN_FEATURES)
                    if drawn == 0:
                        problems.append(f"{shot.path} ({size}): the map shows none of its features")
                    png = page.screenshot()
                    path = out / f"{shot.name}-{size}.png"
                    path.write_bytes(png)
                    print(f"{path.relative_to(out.parent)}: {len(png) // 1024} KiB, drawn features: {drawn}")
                    if readme and size == "desktop" and shot.name in ("public-map", "planner-map"):
                        downscaled(png, readme / f"{shot.name}.png")
                    page.close()
                problems += [f"a request to another host ({size}): {url}" for url in foreign]
                context.close()
        finally:
            browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "screenshots", help="where PNGs go")
    parser.add_argument("--readme", action="store_true", help="also write the README's two pictures to docs/img")
    parser.add_argument("--only", default="", help="only these pages, comma-separated names (e.g. lifecircle)")
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {shot.name for shot in PAGES}
    if unknown:
        parser.error(f"unknown page(s) {', '.join(sorted(unknown))}; the pages: {', '.join(s.name for s in PAGES)}")
    pages = tuple(shot for shot in PAGES if not wanted or shot.name in wanted)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geoplan-shots-") as tmp:
        store = Path(tmp) / "gaoming.gpkg"
        env = {**os.environ, "GEOPLAN_STORE": str(store), "GEOPLAN_LAYERS_DIR": str(ROOT / "layers")}
        env.pop("GEOPLAN_BASEMAP", None)  # the default: the offline reference basemap
        geoplan("demo", env=env)
        tokens = {
            role: geoplan("token", "create", "--role", role, "--name", f"screenshots-{role}", env=env).split()[-1]
            for role in ("planner", "admin")
        }
        port = free_port()
        try:
            with serving(
                app_command(port),
                port=port,
                env=env,
                log_path=Path(tmp) / "uvicorn.log",
                name="uvicorn",
                timeout=60,
                cwd=ROOT,
            ) as base:
                problems = shoot(
                    base,
                    tokens,
                    args.out.resolve(),
                    ROOT / "docs" / "img" if args.readme else None,
                    args.chromium,
                    pages,
                )
        except ServerFailed as exc:
            sys.exit(str(exc))
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
