"""Run by the system Python that has QGIS (Debian's python3-qgis), not by the project's: load collections
through QGIS's OAPIF provider and print what QGIS sees as JSON. Usage: qgis_oapif_probe.py BASE_URL NAME...

Imports nothing from geoplan (that Python has none of its dependencies).
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsVectorLayer


def main() -> None:
    base, names = sys.argv[1], sys.argv[2:]
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    result = {"version": Qgis.QGIS_VERSION, "layers": {}}
    for name in names:
        layer = QgsVectorLayer(f"url='{base}' typename='{name}'", name, "OAPIF")
        entry = {"valid": layer.isValid()}
        if layer.isValid():
            ids = [f.id() for f in layer.getFeatures()]
            entry |= {
                "featureCount": layer.featureCount(),
                "iterated": len(ids),
                "crs": layer.crs().authid(),
                "fields": [f.name() for f in layer.fields()],
            }
            # Part 3 is not in 3.22: a subset string is evaluated by QGIS itself, on what it downloaded.
            entry["subsetAccepted"] = layer.setSubsetString("\"status\" = '在建'") if name == "projects" else None
            entry["subsetCount"] = len(list(layer.getFeatures())) if name == "projects" else None
        result["layers"][name] = entry
    print(json.dumps(result, ensure_ascii=False), flush=True)
    # QGIS 3.22 headless can crash in its own teardown (exitQgis, Qt's atexit): the answer is printed, so
    # leave without running it.
    os._exit(0)


main()
