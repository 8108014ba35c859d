"""The village checklist (镇村发展现代化): per village / community and quarter, the state of each item.

The items and their states are data (layers/rules/village_checklist.yaml). A record says "village V, item I,
quarter Q: state S"; the state of an item as of a quarter is the latest record up to that quarter (a later
record for the same quarter corrects it), or the item's first state when there is none. Virtual units
(villages.type == virtual: prisons, state farms) are not villages here: records for them are refused and
they are left out of the shares. Records are stored in `village_checklist_store` and audited when written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import yaml

from geoplan.analysis.unit_groups import VIRTUAL_TYPE
from geoplan.errors import InputError, StoreError
from geoplan.monitoring.asof import AsOf, as_of_now
from geoplan.monitoring.ledger_quarters import Quarter
from geoplan.monitoring.ledger_store import ledger_engine
from geoplan.monitoring.village_checklist_store import (
    CHECKLIST_FIELDS,
    insert_checklist_records,
    read_checklist_records,
    replace_checklist_records,
)
from geoplan.storage import LayerStore
from geoplan.storage.base import now_utc

__all__ = [
    "CHECKLIST_FILE",
    "STATE_COLUMNS",
    "Checklist",
    "ChecklistItem",
    "checklist_for",
    "checklist_records",
    "checklist_state",
    "known_records",
    "load_checklist",
    "load_checklist_records",
    "record_checklist",
    "validate_records",
]

CHECKLIST_FILE = Path("rules") / "village_checklist.yaml"
VILLAGES = "villages"
STATE_COLUMNS = ["village_code", "village_name", "town", "item", "state", "achieved", "quarter"]
MAX_NOTE = 2000


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    title_zh: str
    title_en: str
    states: tuple[str, ...]
    achieved: str

    @property
    def initial(self) -> str:
        return self.states[0]


@dataclass(frozen=True)
class Checklist:
    items: tuple[ChecklistItem, ...]

    def item(self, code: str) -> ChecklistItem:
        for item in self.items:
            if item.code == code:
                return item
        codes = ", ".join(i.code for i in self.items)
        raise InputError(
            f"unknown checklist item {code!r}; use one of {codes}",
            zh=f"未知的检查项“{code}”：可用的有 {codes}。",
        )

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.items)


def checklist_for(layers_dir: Path) -> Checklist:
    return load_checklist(Path(layers_dir) / CHECKLIST_FILE)


def load_checklist(path: Path) -> Checklist:
    """Read and check the items file: unique codes, at least two states each, `achieved` one of them."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StoreError(f"cannot read the village checklist {path}: {exc}") from None
    entries = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise StoreError(f"{Path(path).name}: 'items' must be a non-empty list")
    items = []
    for entry in entries:
        if not isinstance(entry, dict) or not all(k in entry for k in ("code", "title_zh", "states", "achieved")):
            raise StoreError(f"{Path(path).name}: each item needs code, title_zh, states and achieved: {entry!r}")
        states = tuple(str(s) for s in entry["states"] or ())
        item = ChecklistItem(
            code=str(entry["code"]),
            title_zh=str(entry["title_zh"]),
            title_en=str(entry.get("title_en") or entry["code"]),
            states=states,
            achieved=str(entry["achieved"]),
        )
        if len(set(states)) != len(states) or len(states) < 2 or item.achieved not in states:
            raise StoreError(f"{Path(path).name}: item {item.code}: two or more distinct states, achieved among them")
        items.append(item)
    codes = [i.code for i in items]
    if len(set(codes)) != len(codes):
        raise StoreError(f"{Path(path).name}: item codes must be unique")
    return Checklist(tuple(items))


# --------------------------------------------------------------------------------------------- state


def checklist_state(
    *, villages: pd.DataFrame, records: pd.DataFrame, checklist: Checklist, quarter: str | Quarter
) -> pd.DataFrame:
    """Each (non-virtual) village's state of each item as of the quarter, one row per village and item.

    Columns `STATE_COLUMNS`: `quarter` is the quarter of the record that set the state ("" when none did and
    the state is the item's first). Records of unknown villages or items are ignored here (they are refused
    when written)."""
    last = str(quarter if isinstance(quarter, Quarter) else Quarter.parse(quarter))
    units = villages[villages["type"].astype(str) != VIRTUAL_TYPE]
    current = records[records["quarter"].astype(str) <= last]
    latest = current.sort_values(["village_code", "item", "quarter", "record_id"]).groupby(["village_code", "item"])
    last_rows = latest.tail(1)
    found = {
        (str(v), str(i)): (str(s), str(q))
        for v, i, s, q in zip(
            last_rows["village_code"], last_rows["item"], last_rows["state"], last_rows["quarter"], strict=True
        )
    }
    rows = []
    for unit in units[["village_code", "village_name", "town"]].itertuples(index=False):
        for item in checklist.items:
            state, since = found.get((str(unit.village_code), item.code), (item.initial, ""))
            if state not in item.states:
                state, since = item.initial, ""
            rows.append(
                (
                    str(unit.village_code),
                    str(unit.village_name),
                    str(unit.town),
                    item.code,
                    state,
                    state == item.achieved,
                    since,
                )
            )
    out = pd.DataFrame(rows, columns=STATE_COLUMNS)
    out["achieved"] = out["achieved"].astype(bool)
    return out


def known_records(records: pd.DataFrame, moment: AsOf) -> pd.DataFrame:
    """The records known at the moment: recorded by then (for an earlier moment) and for its quarter or before."""
    keep = records["quarter"].astype(str) <= str(moment.quarter)
    if not moment.current and len(records):
        keep &= pd.to_datetime(records["recorded_at"], utc=True) <= pd.Timestamp(moment.at)
    return records[keep.to_numpy()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------- records


def checklist_records(store: LayerStore) -> pd.DataFrame:
    with ledger_engine(store) as engine:
        return read_checklist_records(engine)


def validate_records(
    records: pd.DataFrame, *, villages: pd.DataFrame, checklist: Checklist, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Checked rows ready to store; the first bad record raises an InputError naming it (English and Chinese).

    A record needs a known village (not a virtual unit), a known item, one of the item's states and a quarter
    written YYYYQn that has begun."""
    missing = [c for c in ("village_code", "quarter", "item", "state") if c not in records.columns]
    if missing:
        raise InputError(
            f"checklist records lack column(s) {', '.join(missing)}", zh=f"检查记录缺少字段：{'、'.join(missing)}。"
        )
    kinds = dict(zip(villages["village_code"].astype(str), villages["type"].astype(str), strict=True))
    current = as_of_now(now).quarter
    rows = []
    for n, record in enumerate(records.to_dict("records"), start=1):
        code = str(record["village_code"]).strip()
        where, where_zh = f"record {n} (village {code})", f"第 {n} 条记录（村居 {code}）"
        if code not in kinds:
            raise InputError(f"{where}: unknown village code", zh=f"{where_zh}：村（社区）代码不存在。")
        if kinds[code] == VIRTUAL_TYPE:
            raise InputError(
                f"{where}: a virtual unit is not a village for the checklist",
                zh=f"{where_zh}：虚拟单位（监狱、林场等）不是村居，不参加此项检查。",
            )
        item = checklist.item(str(record["item"]).strip())
        quarter = Quarter.parse(str(record["quarter"]))
        if quarter > current:
            raise InputError(f"{where}: quarter {quarter} has not begun", zh=f"{where_zh}：{quarter} 尚未开始。")
        state = str(record["state"]).strip()
        if state not in item.states:
            raise InputError(
                f"{where}: state {state!r} is not one of {', '.join(item.states)} ({item.code})",
                zh=f"{where_zh}：{item.title_zh}的状态“{state}”无效，应为 {'、'.join(item.states)} 之一。",
            )
        note = str(record.get("note") or "")
        if len(note) > MAX_NOTE:
            raise InputError(f"{where}: note longer than {MAX_NOTE} characters", zh=f"{where_zh}：说明过长。")
        rows.append(
            {
                "village_code": code,
                "quarter": str(quarter),
                "item": item.code,
                "state": state,
                "note": note,
                "recorded_by": str(record.get("recorded_by") or ""),
                "recorded_at": str(record.get("recorded_at") or ""),
                "synthetic": bool(record.get("synthetic", False)),
            }
        )
    return rows


def record_checklist(
    store: LayerStore, records: pd.DataFrame, *, checklist: Checklist, actor: str, now: datetime | None = None
) -> list[int]:
    """Check and store records (all or none), audited under the actor; returns the new record ids."""
    if not actor.strip():
        raise InputError("an actor is required", zh="须注明记录人。")
    villages = store.read(VILLAGES)
    rows = validate_records(records, villages=villages, checklist=checklist, now=now)
    at = now.astimezone(UTC).isoformat(timespec="seconds") if now else now_utc()
    for row in rows:
        row.update(recorded_by=actor.strip(), recorded_at=at, synthetic=False)
    with ledger_engine(store) as engine:
        return insert_checklist_records(engine, rows, actor=actor.strip())


def load_checklist_records(store: LayerStore, records: pd.DataFrame, *, actor: str) -> int:
    """Replace every checklist record with `records` (the demo's history): one transaction, one audit entry."""
    missing = [name for name in CHECKLIST_FIELDS if name not in records.columns]
    if missing:
        raise InputError(f"checklist records lack column(s) {', '.join(missing)}")
    rows = [{name: _plain(row[name]) for name in CHECKLIST_FIELDS} for row in records.to_dict("records")]
    with ledger_engine(store) as engine:
        return replace_checklist_records(engine, rows, actor=actor)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def village_map(villages: gpd.GeoDataFrame, state: pd.DataFrame, item: ChecklistItem) -> gpd.GeoDataFrame:
    """The villages (non-virtual) with one item's state as of the quarter: for the map per item."""
    rows = state[state["item"] == item.code].set_index("village_code")
    units = villages[villages["type"].astype(str) != VIRTUAL_TYPE]
    out = units[["village_code", "village_name", "town", "geometry"]].copy()
    codes = out["village_code"].astype(str)
    out["item"] = item.code
    out["item_title"] = item.title_zh
    out["state"] = codes.map(rows["state"]).fillna(item.initial).astype(object)
    out["achieved"] = (out["state"] == item.achieved).astype(bool)
    out["since"] = codes.map(rows["quarter"]).fillna("").astype(object)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class ChecklistView:
    """One item's state per village as of a quarter (with geometry, for the map), and the shares per town."""

    quarter: str
    item: ChecklistItem
    villages: gpd.GeoDataFrame
    towns: pd.DataFrame
    """town, villages, achieved, share_pct (district last, town "全区")."""
    synthetic: bool


DISTRICT_ROW = "全区"


def checklist_view(store: LayerStore, *, checklist: Checklist, item: str, quarter: str | None = None) -> ChecklistView:
    """The map and the table of one item as of a quarter (default: the latest quarter recorded, else now)."""
    chosen = checklist.item(item)
    records = checklist_records(store)
    if quarter is not None:
        as_of = str(Quarter.parse(quarter))
    elif len(records):
        as_of = str(max(records["quarter"].astype(str)))
    else:
        as_of = str(as_of_now().quarter)
    villages = store.read(VILLAGES)
    state = checklist_state(villages=villages, records=records, checklist=checklist, quarter=as_of)
    frame = village_map(villages, state, chosen)
    return ChecklistView(
        quarter=as_of,
        item=chosen,
        villages=frame,
        towns=town_shares(frame),
        synthetic=bool(records["synthetic"].astype(bool).any()) if len(records) else False,
    )


def town_shares(frame: pd.DataFrame) -> pd.DataFrame:
    """Villages, achieved and the share (%, two decimals) per town in the layer's order, then the district."""
    rows = []
    for town in [*pd.unique(frame["town"].astype(str)), None]:
        part = frame if town is None else frame[frame["town"].astype(str) == town]
        done = int(part["achieved"].sum())
        share = round(100.0 * done / len(part), 2) if len(part) else 0.0
        rows.append((DISTRICT_ROW if town is None else town, len(part), done, share))
    return pd.DataFrame(rows, columns=["town", "villages", "achieved", "share_pct"])
