"""Runtime settings, read from the environment (GEOPLAN_*) only when asked: nothing is built at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAYERS_DIR = PROJECT_ROOT / "layers"
DEFAULT_STORE = str(PROJECT_ROOT / "data" / "gaoming.gpkg")


class Settings(BaseSettings):
    """Where the data lives and where the layer catalogue is."""

    model_config = SettingsConfigDict(env_prefix="GEOPLAN_")

    store: str = DEFAULT_STORE
    """A GeoPackage path (embedded default) or a postgresql:// URL."""

    layers_dir: Path = DEFAULT_LAYERS_DIR
    """Folder of layer definitions (*.yaml) and the demo data sources."""

    max_import_bytes: int = 200 * 1024 * 1024
    """Largest file (or unpacked archive) an import accepts."""

    dask_scheduler: str | None = None
    """Address of a running dask scheduler (tcp://host:8786) for partitioned analyses; unset: a LocalCluster."""

    dask_workers: int = 2
    """Workers of the LocalCluster started when no scheduler is given (one thread each)."""

    dask_memory_limit: str = "auto"
    """Memory limit per LocalCluster worker ('2GB', bytes, or 'auto': the machine's memory shared out)."""
