"""Static checks of our own page scripts: user data reaches the DOM as text only.

A script may use no HTML-parsing sink; it writes text with textContent. Map scripts also keep away from what
Leaflet itself parses as HTML: its layer control (layer names), and tooltips, popups and divIcons given as
strings (they must be DOM nodes).
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
HTML_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
_STRING_START = ("'", '"', "`")


def script_code(name: str) -> str:
    """The script in web/static without its comments (comments may name the sinks)."""
    source = (STATIC / name).read_text(encoding="utf-8")
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.DOTALL)


def assert_builds_no_html_from_strings(name: str, *, leaflet: bool = False, text: bool = True) -> None:
    """`name` uses no HTML sink and writes text with textContent; with `leaflet`, no Leaflet HTML either.

    `text=False`: a script that writes text only through the shared helpers (el, setStatus), not itself.
    """
    code = script_code(name)
    for sink in HTML_SINKS:
        assert sink not in code, sink
    assert ("textContent" in code) == text
    if not leaflet:
        return
    assert "control.layers" not in code
    for call in re.findall(r"bind(?:Tooltip|Popup)\(([^,)]*)", code):
        assert not call.strip().startswith(_STRING_START), call
    for html in re.findall(r"html:\s*([^,}]*)", code):  # divIcon content: a DOM node, never a string
        assert not html.strip().startswith(_STRING_START), html
