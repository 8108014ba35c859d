"""The demo's project ledger: each project's synthetic attributes as of the plan's end, and its quarterly records.

Status, progress and years come from each project's simulated quarters (`progress.simulate`); money, the five
assurances (规划、用地、资金、进度、责任单位) and the notes are drawn from the seeded generator. Synthetic.
"""

from __future__ import annotations

import numpy as np
import shapely

from geoplan.demo.partition import Partition
from geoplan.demo.progress import simulate
from geoplan.demo.projects import FARMLAND, REDLINE, Project

__all__ = ["SPEC", "ledger"]

SPEC = (
    ("project_id", "string"),
    ("name", "string"),
    ("task_area", "string"),
    ("category", "string"),
    ("town", "string"),
    ("responsible_unit", "string"),
    ("investment_wan", "float"),
    ("start_year", "integer"),
    ("end_year", "integer"),
    ("status", "string"),
    ("progress_pct", "float"),
    ("assured_planning", "boolean"),
    ("assured_land", "boolean"),
    ("assured_funds", "boolean"),
    ("assured_schedule", "boolean"),
    ("assured_unit", "boolean"),
    ("internal_note", "string"),
)


def ledger(
    projects: list[Project], part: Partition, rng: np.random.Generator, progress_rng: np.random.Generator
) -> tuple[dict[str, list[object]], list[dict[str, object]]]:
    """Synthetic ledger entries as of the end of the plan (2020Q4) and the quarterly records leading there.

    Status, progress and years come from each project's simulated quarters (`progress.simulate`), so the
    layer and the records agree; projects held up by a planning conflict stay in planning or are suspended.
    """
    rows: dict[str, list[object]] = {name: [] for name, _ in SPEC}
    records: list[dict[str, object]] = []
    town_names = dict(zip(part.town_codes, _town_names(part), strict=True))
    for i, p in enumerate(projects):
        d = p.definition
        project_id = f"GM-2024-{i + 1:03d}"
        invest = round(float(rng.uniform(*d.invest)), 1)
        blocker = ""
        if d.conflict == REDLINE:
            blocker = "线位涉及生态保护红线，需开展不可避让论证或调整线位"
        elif d.conflict == FARMLAND:
            blocker = "涉及永久基本农田，需优化线位或依法办理占用补划"
        path = simulate(
            project_id=project_id,
            unit=d.unit,
            invest=invest,
            held_up=d.conflict is not None,
            held_up_note=blocker,
            rng=progress_rng,
        )
        records += path.records
        status = path.status
        chance = {"已完工": 1.0, "在建": 0.85, "已开工": 0.8, "前期": 0.6, "暂缓": 0.35}[status]
        flags = {k: bool(rng.random() < chance) for k in ("planning", "land", "funds", "schedule")}
        if status == "暂缓":
            flags["schedule"] = False
        if d.conflict is not None:
            flags["planning"] = flags["land"] = False
        notes = [blocker] if blocker else []
        if not flags["land"] and d.conflict is None:
            notes.append("用地指标尚未落实")
        if not flags["funds"]:
            notes.append(f"资金缺口约{round(invest * float(rng.uniform(0.1, 0.4)))}万元，待区财政统筹")
        if not flags["schedule"]:
            notes.append("进度滞后于年度计划")
        rows["project_id"].append(project_id)
        rows["name"].append(d.name)
        rows["task_area"].append(d.task_area)
        rows["category"].append(d.category)
        rows["town"].append(_towns_of(p.geometry, part, town_names))
        rows["responsible_unit"].append(d.unit)
        rows["investment_wan"].append(invest)
        rows["start_year"].append(path.start_year)
        rows["end_year"].append(path.end_year)
        rows["status"].append(status)
        rows["progress_pct"].append(path.progress)
        for k in ("planning", "land", "funds", "schedule"):
            rows[f"assured_{k}"].append(flags[k])
        rows["assured_unit"].append(True)
        rows["internal_note"].append("；".join(notes) if notes else "按计划推进")
    return rows, records


def _town_names(part: Partition) -> list[str]:
    names = dict(zip(part.villages["town_code"], part.villages["town_name"], strict=False))
    return [str(names[c]) for c in part.town_codes]


def _towns_of(geom: shapely.Geometry, part: Partition, names: dict[str, str]) -> str | None:
    """The towns holding at least a tenth of the footprint, in NBS order."""
    share = [shapely.intersection(geom, t).area / geom.area for t in part.towns]
    hit = [names[c] for c, s in zip(part.town_codes, share, strict=True) if s >= 0.1]
    return "、".join(hit) if hit else None
