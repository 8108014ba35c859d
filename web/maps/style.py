"""How a layer is drawn, from its catalogue `style`: one colour, or one colour per category of a field.

The same `LayerStyle` feeds the legend (server side) and the page script (as JSON), so the swatches in the
legend and the colours on the map cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geoplan.catalog import LayerDef

# ColorBrewer Dark2: eight colours that stay apart on a light background, enough for the plan's eight task areas.
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")


@dataclass(frozen=True)
class LayerStyle:
    color: str
    weight: float = 1.0
    fill_opacity: float = 0.3
    radius: float = 5.0
    dash_array: str | None = None
    category_field: str | None = None
    categories: dict[str, str] = field(default_factory=dict)
    """Category value -> colour, in the catalogue's order of allowed values."""

    def to_json(self) -> dict[str, Any]:
        """The shape the page script reads (camelCase, like Leaflet's own path options)."""
        return {
            "color": self.color,
            "weight": self.weight,
            "fillOpacity": self.fill_opacity,
            "radius": self.radius,
            "dashArray": self.dash_array,
            "categoryField": self.category_field,
            "categories": self.categories,
        }


def layer_style(layer: LayerDef) -> LayerStyle:
    """Colour by category only when the field lists its allowed values: free text has no fixed legend."""
    style = layer.style
    category_field = style.get("category_field")
    categories: dict[str, str] = {}
    if category_field and category_field in layer.field_names:
        allowed = layer.field(category_field).allowed or ()
        categories = {str(value): PALETTE[i % len(PALETTE)] for i, value in enumerate(allowed)}
    return LayerStyle(
        color=str(style.get("color", "#3388ff")),
        weight=float(style.get("weight", 1.0)),
        fill_opacity=float(style.get("fill_opacity", 0.3)),
        radius=float(style.get("radius", 5.0)),
        dash_array=style.get("dash_array"),
        category_field=category_field if categories else None,
        categories=categories,
    )
