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
