"""Turn a folium map into the three pieces our page templates place: head, body and script.

folium renders whole documents; our pages have their own layout (Chinese title, filters, project list), so the
figure's sections are taken apart. Every <script> and <style> folium emits gets the response's CSP nonce, which
lets the Content-Security-Policy refuse all other inline code (see csp.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import folium
from branca.element import Figure
from markupsafe import Markup

_INLINE_TAG = re.compile(r"<(script|style)\b")
# folium's own viewport tag forbids zooming (maximum-scale=1, user-scalable=no), which fails WCAG 1.4.4 (resize
# text); the page template has its own.
_VIEWPORT = re.compile(r"<meta\s+name=\"viewport\"[^>]*>\s*")


@dataclass(frozen=True)
class MapParts:
    header: Markup
    """Leaflet links, folium's map <style> and globals: goes into <head>."""
    html: Markup
    """The map <div> and the legend: goes where the map should be."""
    script: Markup
    """JavaScript (no tags) that builds the map: goes into <script nonce=...> at the end of <body>."""


def with_nonce(html: str, nonce: str) -> str:
    """Add nonce="…" to each <script>/<style> tag. Safe on folium's output: it holds no user data, and text
    that came through `tojson` has its "<" escaped, so only real tags match.
    """
    return _INLINE_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', html)


def render_map(m: folium.Map, *, nonce: str) -> MapParts:
    figure = m.get_root()
    if not isinstance(figure, Figure):  # folium puts every Map in a Figure; this narrows the type
        raise TypeError("the map is not in a folium Figure")
    figure.render()  # renders every element once, which fills the figure's header, html and script sections
    return MapParts(
        header=Markup(with_nonce(_VIEWPORT.sub("", figure.header.render()), nonce)),
        html=Markup(with_nonce(figure.html.render(), nonce)),
        script=Markup(figure.script.render()),
    )
