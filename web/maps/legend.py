"""The map legend: every layer on the map, its colours, and whether its data is synthetic.

Layers that hold synthetic demo data now (the catalogue's `synthetic: true` and the demo's writes still in the
store: geoplan.services.provenance) are marked 示意数据 / synthetic in every legend, so nobody mistakes the demo
footprints and figures for official data; a layer replaced by real data is marked 真实数据. Swatches are SVG
shapes with `fill` attributes, not `style` attributes, so the page's Content-Security-Policy needs no
'unsafe-inline' for styles.
"""

from __future__ import annotations

from dataclasses import dataclass

from folium.elements import MacroElement
from folium.template import Template

from geoplan.catalog import LayerDef
from web.maps.style import LayerStyle

SYNTHETIC_LABEL = "示意数据 / synthetic"
REAL_LABEL = "真实数据"


@dataclass(frozen=True)
class LegendEntry:
    title: str
    synthetic: bool
    geometry: str
    color: str
    fill_opacity: float
    category_title: str = ""
    categories: tuple[tuple[str, str], ...] = ()
    """(label, colour) pairs in the catalogue's order."""


def legend_entry(layer: LayerDef, style: LayerStyle, *, synthetic: bool) -> LegendEntry:
    """The layer's legend entry; `synthetic`: whether it holds demo data now (provenance.synthetic_now)."""
    category_title = layer.field(style.category_field).title_zh if style.category_field else ""
    return LegendEntry(
        title=layer.title_zh,
        synthetic=synthetic,
        geometry=layer.geometry or "",
        color=style.color,
        fill_opacity=style.fill_opacity,
        category_title=category_title,
        categories=tuple(style.categories.items()),
    )


# autoescape: the catalogue is trusted, but a title with "<" must still show as text.
_TEMPLATE = Template(
    """
{% macro swatch(geometry, color, opacity) -%}
<svg class="gp-swatch" viewBox="0 0 14 14" aria-hidden="true">
{%- if geometry == "Point" -%}
<circle cx="7" cy="7" r="5" fill="{{ color }}" fill-opacity="0.8" stroke="{{ color }}"/>
{%- elif geometry == "MultiLineString" -%}
<line x1="1" y1="7" x2="13" y2="7" stroke="{{ color }}" stroke-width="2"/>
{%- else -%}
<rect x="1" y="1" width="12" height="12" fill="{{ color }}" fill-opacity="{{ opacity }}" stroke="{{ color }}"/>
{%- endif -%}
</svg>
{%- endmacro %}

{% macro html(this, kwargs) %}
<div class="gp-legend leaflet-control" id="{{ this.get_name() }}" role="region" aria-label="{{ this.title }}">
  <h2 class="gp-legend-title">{{ this.title }}</h2>
  {% for entry in this.entries %}
  <section class="gp-legend-layer">
    <h3>
      {%- if not entry.categories %}{{ swatch(entry.geometry, entry.color, entry.fill_opacity) }}{% endif -%}
      <span class="gp-legend-name">{{ entry.title }}</span>
      {% if entry.synthetic %}<span class="gp-tag gp-tag-synthetic" title="合成的演示数据，非官方数据">{{
        this.synthetic_label }}</span>
      {% else %}<span class="gp-tag gp-tag-real">{{ this.real_label }}</span>{% endif %}
    </h3>
    {% if entry.categories %}
    <p class="gp-legend-sub">按{{ entry.category_title }}</p>
    <ul class="gp-legend-items">
      {% for label, color in entry.categories %}
      <li>{{ swatch(entry.geometry, color, entry.fill_opacity) }}<span>{{ label }}</span></li>
      {% endfor %}
    </ul>
    {% endif %}
  </section>
  {% endfor %}
  {% if this.note %}<p class="gp-legend-note">{{ this.note }}</p>{% endif %}
</div>
{% endmacro %}

{% macro script(this, kwargs) %}
GeoplanMap.addLegend({{ this._parent.get_name() }}, document.getElementById({{ this.get_name()|tojson }}));
{% endmacro %}
""",
    autoescape=True,
)


class Legend(MacroElement):
    """A legend rendered by folium into the page and moved into a Leaflet control by the page script."""

    _template = _TEMPLATE

    def __init__(self, entries: list[LegendEntry], *, note: str = "", title: str = "图例") -> None:
        super().__init__()
        self._name = "Legend"
        self.entries = entries
        self.note = note
        self.title = title
        self.synthetic_label = SYNTHETIC_LABEL
        self.real_label = REAL_LABEL
