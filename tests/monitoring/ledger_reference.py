"""The project ledger recomputed independently, to check geoplan's against: plain SQL on the GeoPackage's
tables and pandas, no geoplan code but the names of the five assurances."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from geoplan.monitoring.ledger import ASSURANCES


def independent_ledger(store_path: Path, as_of: str) -> pd.DataFrame:
    """Per project, in the layer's order: status, progress, overdue and the missing assurances as of the quarter
    `as_of` (e.g. 2020Q4)."""
    connection = sqlite3.connect(store_path)
    try:
        projects = pd.read_sql_query("SELECT * FROM projects ORDER BY fid", connection)
        all_records = pd.read_sql_query("SELECT * FROM geoplan_project_progress", connection)
    finally:
        connection.close()
    year, q = int(as_of[:4]), int(as_of[5])
    records = all_records[all_records["quarter"] <= as_of].sort_values(["quarter", "id"])
    latest = records.drop_duplicates("project_id", keep="last").set_index("project_id")
    has_any = set(all_records["project_id"])
    rows = []
    for p in projects.itertuples():
        if year < p.start_year:
            status, progress = "前期", 0.0
        elif p.project_id in latest.index:
            status, progress = latest.loc[p.project_id, "status"], float(latest.loc[p.project_id, "progress_pct"])
        elif p.project_id in has_any:
            status, progress = "前期", 0.0
        else:
            status, progress = p.status, float(p.progress_pct)
        ended = year > p.end_year or (year == p.end_year and q == 4)
        missing = [title for field, title in ASSURANCES.items() if getattr(p, field) != 1]
        rows.append((p.project_id, status, progress, ended and progress < 100 and status != "已完工", missing))
    return pd.DataFrame(rows, columns=["project_id", "status", "progress_pct", "overdue", "missing_assurances"])
