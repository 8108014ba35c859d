"""Run by the system Python that has QGIS (Debian's python3-qgis), not by the project's: open a raster through
QGIS's GDAL provider and print what QGIS sees as JSON. Usage: qgis_raster_probe.py SOURCE

SOURCE is any GDAL raster source, e.g. GPKG:store.gpkg:population. Imports nothing from geoplan (that Python has
none of its dependencies).
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsRasterBandStats, QgsRasterLayer


def main() -> None:
    source = sys.argv[1]
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    layer = QgsRasterLayer(source, "raster", "gdal")
    result = {"version": Qgis.QGIS_VERSION, "valid": layer.isValid()}
    if layer.isValid():
        provider = layer.dataProvider()
        stats = provider.bandStatistics(1, QgsRasterBandStats.All, layer.extent(), 0)
        extent = layer.extent()
        result |= {
            "width": layer.width(),
            "height": layer.height(),
            "crs": layer.crs().authid(),
            "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
            "nodata": provider.sourceNoDataValue(1) if provider.sourceHasNoDataValue(1) else None,
            "sum": stats.sum,
            "count": stats.elementCount,
        }
    print(json.dumps(result), flush=True)
    # QGIS 3.22 headless can crash in its own teardown (exitQgis, Qt's atexit): the answer is printed, so
    # leave without running it.
    os._exit(0)


main()
