"""Reading and writing geodata files (GeoJSON, GeoPackage, zipped Shapefile, KML, CSV, Excel).

`read_file` returns EPSG:4490 frames whose coordinate system has been decided by `geoplan.crs.to_store_crs`;
it does not check them against the catalogue (that is `geoplan.validation`). `write_file` exports a frame.

Modules: `formats` (the format table and the two entry points), `readers`, `writers`, `archive` (zip safety).
"""

from geoplan.io.formats import DEFAULT_MAX_BYTES, FORMATS, FileFormat, read_file, read_raw, supported, write_file

__all__ = ["DEFAULT_MAX_BYTES", "FORMATS", "FileFormat", "read_file", "read_raw", "supported", "write_file"]
