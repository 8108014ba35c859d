"""Create every table geoplan keeps in a store: the catalogue layers, tokens, conflict marks, progress records
and scenarios.

All are made up front (by `geoplan db init`, `geoplan demo` and the web app's start-up), never lazily on a
first use: creating a table in a GeoPackage while another process reads it can make that reader fail.
"""

from __future__ import annotations

from geoplan.monitoring.ledger_store import create_progress_table
from geoplan.monitoring.snapshots import create_snapshot_tables
from geoplan.monitoring.village_checklist_store import create_checklist_table
from geoplan.services.overlap_marks import MarkRegistry
from geoplan.services.scenario_store import ScenarioRegistry
from geoplan.services.tokens import TokenRegistry
from geoplan.storage import LayerStore
from geoplan.storage.side_tables import side_table_engine


def init_store(store: LayerStore) -> None:
    """Idempotent: existing tables and their data are kept."""
    store.init()
    engine = side_table_engine(store.url)
    try:
        TokenRegistry(engine)
        MarkRegistry(engine)
        ScenarioRegistry(engine)
        create_progress_table(engine)
        create_snapshot_tables(engine)
        create_checklist_table(engine)
    finally:
        engine.dispose()
