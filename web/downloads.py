"""Tables served as files (CSV, Excel, GeoPackage, GeoJSON): written by `geoplan.io.write_file` into a private
temporary folder that is removed once the response has been sent, so no download is left on the disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from geoplan.io import write_file

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}
"""The media type of each download format, by suffix."""


async def table_download(frame: gpd.GeoDataFrame, *, name: str, fmt: str) -> FileResponse:
    """`frame` as the file `{name}.{fmt}` (its layer or sheet named `name`); the writing runs off the event loop."""
    folder = Path(tempfile.mkdtemp(prefix=f"geoplan-{name}-"))
    file_name = f"{name}.{fmt}"
    try:
        path = await run_in_threadpool(write_file, frame, folder / file_name, layer_name=name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=file_name, background=cleanup)
