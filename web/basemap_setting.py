"""The basemap settings as text (`GEOPLAN_BASEMAP`, `GEOPLAN_BASEMAP_URL`), parsed into what they mean.

Checked when the settings are made, i.e. at startup: a typo or a missing package file stops the server with a
message naming the value, instead of every map silently showing a blank background.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

Kind = Literal["reference", "none", "osm", "tianditu", "amap", "mbtiles", "pmtiles"]
NAMED_KINDS = ("reference", "none", "osm", "tianditu", "amap")
PACKAGE_KINDS = ("mbtiles", "pmtiles")

# WMTS KVP and RESTful templates name the tile by TileMatrix/TileRow/TileCol; Leaflet fills {z}/{y}/{x}.
_WMTS_NAMES = {"{tilematrix}": "{z}", "{tilerow}": "{y}", "{tilecol}": "{x}"}
_WMTS_PATTERN = re.compile(r"\{(tilematrix|tilerow|tilecol)\}", re.IGNORECASE)
_VECTOR_SUFFIXES = (".pbf", ".mvt")


@dataclass(frozen=True)
class BasemapChoice:
    kind: Kind
    path: Path | None = None
    """The package file, for mbtiles and pmtiles."""


@dataclass(frozen=True)
class TileUrl:
    """An intranet tile service: the Leaflet template and the one origin the page's CSP then allows."""

    template: str
    origin: str
    vector: bool
    """Vector tiles (.pbf/.mvt) are fetched by script: the origin goes into connect-src, not img-src."""


def parse_basemap(text: str) -> BasemapChoice:
    """`reference`, `none`, `osm`, `tianditu`, `amap`, `mbtiles:PATH` or `pmtiles:PATH`; ValueError otherwise."""
    value = text.strip()
    kind, sep, rest = value.partition(":")
    kind = kind.strip().lower()
    if not sep and kind in NAMED_KINDS:
        return BasemapChoice(cast(Kind, kind))
    if sep and kind in PACKAGE_KINDS:
        path = Path(rest.strip()).expanduser()
        if not rest.strip():
            raise ValueError(f"basemap {value!r}: give the package file, e.g. {kind}:/srv/tiles/gaoming.{kind}")
        if not path.is_file():
            raise ValueError(f"basemap {value!r}: the tile package {path} does not exist or is not a file")
        return BasemapChoice(cast(Kind, kind), path)
    choices = ", ".join([*NAMED_KINDS, *(f"{k}:PATH" for k in PACKAGE_KINDS)])
    raise ValueError(f"basemap {value!r} is not one of {choices}")


def parse_tile_url(text: str) -> TileUrl:
    """An XYZ template (…/{z}/{x}/{y}.png) or a WMTS template (TILEMATRIX={TileMatrix}&TILEROW={TileRow}&…) on an
    http(s) host; {s} subdomains are refused, since the CSP allows exactly one origin."""
    template = _WMTS_PATTERN.sub(lambda m: _WMTS_NAMES[m.group(0).lower()], text.strip())
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"basemap URL {text!r}: an http:// or https:// tile URL with a host name is needed")
    missing = [name for name in ("{z}", "{x}", "{y}") if name not in template]
    if missing:
        raise ValueError(f"basemap URL {text!r}: the template lacks {', '.join(missing)} (or WMTS {{TileMatrix}}…)")
    if "{s}" in template or "{" in parts.netloc:
        raise ValueError(f"basemap URL {text!r}: name one host (no {{s}} subdomains): the CSP allows exactly it")
    vector = parts.path.lower().endswith(_VECTOR_SUFFIXES)
    return TileUrl(template=template, origin=f"{parts.scheme}://{parts.netloc}", vector=vector)


def check_combination(basemap: BasemapChoice, url: str) -> None:
    """A tile URL is the background itself: it goes with the default `reference` only."""
    if url.strip() and basemap.kind != "reference":
        raise ValueError(
            f"GEOPLAN_BASEMAP_URL replaces the background; it cannot be combined with basemap {basemap.kind!r}"
        )
