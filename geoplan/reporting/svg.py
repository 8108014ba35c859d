"""A tiny SVG element tree: charts are built once, in Python, and leave as SVG text (the HTML report) or as a JSON
tree (the dashboard, whose script rebuilds it with createElementNS and textContent, never parsing markup).

Only the elements and attributes listed here can be made, so the tree can carry nothing executable: no script,
no event handler, no link, no style attribute (the pages' CSP forbids inline styles; presentation attributes
such as `fill` are not styles). The dashboard script checks the same lists again before it builds a node.
Text and attribute values are escaped by ElementTree when written as SVG.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ATTRIBUTES", "ELEMENTS", "Node", "el", "num"]

ELEMENTS = frozenset({"svg", "g", "rect", "line", "polyline", "polygon", "path", "circle", "text", "title", "desc"})
ATTRIBUTES = frozenset(
    {
        "viewBox",
        "width",
        "height",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "d",
        "points",
        "fill",
        "fill-opacity",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "stroke-linejoin",
        "opacity",
        "font-size",
        "font-weight",
        "text-anchor",
        "dominant-baseline",
        "transform",
        "class",
        "role",
        "aria-label",
        "preserveAspectRatio",
    }
)
"""Besides these, `data-*` attributes (lower-case letters, digits and -) carry values for tests and scripts."""
_DATA_ATTRIBUTE = re.compile(r"^data-[a-z0-9-]{1,40}$")


def num(value: float) -> str:
    """A coordinate or value as short text (two decimals at most; no exponent, no -0)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Node:
    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[Node, ...] = ()
    text: str | None = None

    def __post_init__(self) -> None:
        if self.tag not in ELEMENTS:
            raise ValueError(f"SVG element {self.tag!r} is not allowed")
        for name, _ in self.attrs:
            if name not in ATTRIBUTES and not _DATA_ATTRIBUTE.fullmatch(name):
                raise ValueError(f"SVG attribute {name!r} is not allowed")

    def to_json(self) -> dict[str, Any]:
        """{tag, attrs, text, children}: what the dashboard script builds the element from."""
        out: dict[str, Any] = {"tag": self.tag, "attrs": dict(self.attrs)}
        if self.text is not None:
            out["text"] = self.text
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out

    def to_element(self) -> ET.Element:
        element = ET.Element(self.tag, dict(self.attrs))
        if self.text is not None:
            element.text = self.text
        element.extend(c.to_element() for c in self.children)
        return element

    def to_svg(self) -> str:
        """SVG markup for inlining in HTML (no XML declaration; HTML's parser needs no namespace)."""
        return ET.tostring(self.to_element(), encoding="unicode", method="xml", short_empty_elements=True)

    def walk(self) -> list[Node]:
        """This node and every descendant, depth first."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


def el(tag: str, attrs: Mapping[str, Any] | None = None, *children: Node, text: str | None = None) -> Node:
    """A node; attribute values become text (floats through `num`), None values are left out."""
    pairs = []
    for name, value in (attrs or {}).items():
        if value is None:
            continue
        pairs.append((name, num(value) if isinstance(value, float) else str(value)))
    return Node(tag, tuple(pairs), tuple(children), text)
