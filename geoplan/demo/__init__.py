"""The reproducible Gaoming demo dataset: the real district outline, names and census total, the rest synthetic.

`build_demo(sources_dir)` returns one GeoDataFrame per vector layer of the catalogue (EPSG:4490) and the
population raster (EPSG:4547). Modules, one concept each: `sources` (the real inputs), `layout` (the
hand-chosen anchors of the synthetic geography), `hills`, `partition` (towns and villages), `population`,
`roads`, `facilities`, `plan_layers` (多规合一 layers), `zones` (renewal and sponge areas), `projects`,
`frames` (catalogue dtypes, CRS) and `build` (the steps in order).
"""

from geoplan.demo.build import DEFAULT_SEED, DemoData, build_demo

__all__ = ["DEFAULT_SEED", "DemoData", "build_demo"]
