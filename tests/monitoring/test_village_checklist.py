"""The village checklist (镇村发展现代化): records stored and audited in both stores, bad records refused with
clear messages, the state as of a quarter, and the indicators against a plain count of the records."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geoplan.catalog import Catalog
from geoplan.errors import InputError
from geoplan.monitoring.asof import AsOf
from geoplan.monitoring.indicator_defs import parse_indicator_defs
from geoplan.monitoring.indicators import Inputs
from geoplan.monitoring.indicators_table import evaluate
from geoplan.monitoring.village_checklist import (
    checklist_for,
    checklist_records,
    checklist_state,
    checklist_view,
    record_checklist,
)
from geoplan.monitoring.village_checklist_store import CHECKLIST_LAYER
from geoplan.services.store_setup import init_store
from geoplan.storage import LayerStore
from tests.conftest import LAYERS_DIR

CHECKLIST = checklist_for(LAYERS_DIR)
NOW = datetime(2021, 2, 1, tzinfo=UTC)


def _villages() -> gpd.GeoDataFrame:
    """Two villages in 甲镇, one community in 乙镇, and a virtual unit (a prison)."""
    rows = [
        ("440608000001", "一村", "甲镇", "village"),
        ("440608000002", "二村", "甲镇", "village"),
        ("440608000003", "三社区", "乙镇", "community"),
        ("440608000004", "监狱", "监狱", "virtual"),
    ]
    geoms = [shapely.MultiPolygon([shapely.box(112.8 + i * 0.01, 22.9, 112.809 + i * 0.01, 22.91)]) for i in range(4)]
    return gpd.GeoDataFrame(
        {
            "village_code": [r[0] for r in rows],
            "village_name": [r[1] for r in rows],
            "town_code": ["440608000"] * 4,
            "town": [r[2] for r in rows],
            "type": [r[3] for r in rows],
            "population": [100.0] * 4,
        },
        geometry=geoms,
        crs="EPSG:4490",
    )


def _records(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["village_code", "item", "state", "quarter"])


def test_records_are_stored_and_audited_in_both_stores(store: LayerStore) -> None:
    init_store(store)
    store.write("villages", _villages(), actor="test")
    ids = record_checklist(
        store,
        _records(("440608000001", "toilets", "已完成", "2018Q2"), ("440608000003", "five_good", "创建中", "2019Q1")),
        checklist=CHECKLIST,
        actor="王工",
        now=NOW,
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    stored = checklist_records(store)
    assert list(stored["record_id"]) == sorted(ids)
    assert set(zip(stored["village_code"], stored["item"], stored["state"], stored["quarter"], strict=True)) == {
        ("440608000001", "toilets", "已完成", "2018Q2"),
        ("440608000003", "five_good", "创建中", "2019Q1"),
    }
    assert (stored["recorded_by"] == "王工").all() and not stored["synthetic"].any()
    entries = [e for e in store.audit_log(layer=CHECKLIST_LAYER)]
    assert len(entries) == 1 and entries[0].actor == "王工" and entries[0].feature_count == 2


@pytest.mark.parametrize(
    ("record", "message", "zh"),
    [
        (("440608099999", "toilets", "已完成", "2018Q2"), "unknown village code", "代码不存在"),
        (("440608000004", "toilets", "已完成", "2018Q2"), "virtual unit is not a village", "虚拟单位"),
        (("440608000001", "toilet", "已完成", "2018Q2"), "unknown checklist item 'toilet'", "未知的检查项"),
        (("440608000001", "toilets", "完成", "2018Q2"), "state '完成' is not one of 未完成, 已完成", "状态“完成”无效"),
        (("440608000001", "toilets", "已完成", "2018Q5"), "invalid quarter '2018Q5'", "季度"),
        (("440608000001", "toilets", "已完成", "2021Q2"), "quarter 2021Q2 has not begun", "尚未开始"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_stored(
    store: LayerStore, record: tuple[str, str, str, str], message: str, zh: str
) -> None:
    init_store(store)
    store.write("villages", _villages(), actor="test")
    good = ("440608000002", "toilets", "已完成", "2018Q1")
    with pytest.raises(InputError) as caught:
        record_checklist(store, _records(good, record), checklist=CHECKLIST, actor="王工", now=NOW)
    assert message in str(caught.value) and zh in caught.value.zh
    assert len(checklist_records(store)) == 0  # all or none: the good record before it was not stored
    assert not store.audit_log(layer=CHECKLIST_LAYER)


def test_an_actor_is_required(store: LayerStore) -> None:
    init_store(store)
    store.write("villages", _villages(), actor="test")
    with pytest.raises(InputError, match="actor"):
        record_checklist(
            store, _records(("440608000001", "toilets", "已完成", "2018Q2")), checklist=CHECKLIST, actor=" ", now=NOW
        )


def _stored(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = _records(*rows)
    frame.insert(0, "record_id", range(1, len(frame) + 1))
    return frame


def test_state_is_the_latest_record_up_to_the_quarter() -> None:
    records = _stored(
        [
            ("440608000001", "five_good", "创建中", "2018Q1"),
            ("440608000001", "five_good", "已达标", "2019Q3"),
            ("440608000002", "five_good", "已达标", "2018Q2"),
            ("440608000002", "five_good", "创建中", "2018Q2"),  # a correction of the same quarter wins
            ("440608000004", "five_good", "已达标", "2018Q1"),  # a virtual unit: never counted
        ]
    )
    villages = _villages()
    for quarter, expected in {
        "2017Q4": {"440608000001": "未创建", "440608000002": "未创建", "440608000003": "未创建"},
        "2018Q2": {"440608000001": "创建中", "440608000002": "创建中", "440608000003": "未创建"},
        "2019Q3": {"440608000001": "已达标", "440608000002": "创建中", "440608000003": "未创建"},
    }.items():
        state = checklist_state(villages=villages, records=records, checklist=CHECKLIST, quarter=quarter)
        assert len(state) == 3 * len(CHECKLIST.items)  # no virtual unit
        five = state[state["item"] == "five_good"].set_index("village_code")["state"].to_dict()
        assert five == expected, quarter


def test_share_per_town_and_district(catalog: Catalog) -> None:
    records = _stored(
        [("440608000001", "toilets", "已完成", "2018Q1"), ("440608000003", "toilets", "已完成", "2019Q1")]
    )
    state = checklist_state(villages=_villages(), records=records, checklist=CHECKLIST, quarter="2018Q4")
    definition = {
        "id": "toilets",
        "title_zh": "厕所",
        "title_en": "toilets",
        "unit": "%",
        "scopes": ["district", "town"],
        "kind": "village_checklist_share",
        "good_direction": "up",
        "params": {"item": "toilets"},
    }
    defs = parse_indicator_defs({"indicators": [definition]}, catalog=catalog, source="test")
    at = AsOf(at=datetime(2018, 12, 31, 15, 0, tzinfo=UTC))
    inputs = Inputs(layers={"villages": _villages()}, as_of=at, catalog=catalog, checklist=state)
    table = evaluate(definitions=list(defs.indicators), inputs=inputs)
    values = dict(zip(zip(table["scope"], table["scope_key"], strict=True), table["value"], strict=True))
    assert values == {("district", ""): pytest.approx(100 / 3), ("town", "甲镇"): 50.0, ("town", "乙镇"): 0.0}
    bad = parse_indicator_defs(
        {"indicators": [{**definition, "params": {"item": "nope"}}]}, catalog=catalog, source="test"
    )
    with pytest.raises(InputError, match="unknown checklist item 'nope'"):
        evaluate(definitions=list(bad.indicators), inputs=inputs)


def test_view_gives_the_map_per_item(store: LayerStore) -> None:
    init_store(store)
    store.write("villages", _villages(), actor="test")
    record_checklist(
        store,
        _records(("440608000001", "service_station", "已建", "2018Q3")),
        checklist=CHECKLIST,
        actor="王工",
        now=NOW,
    )
    before = checklist_view(store, checklist=CHECKLIST, item="service_station", quarter="2018Q2")
    after = checklist_view(store, checklist=CHECKLIST, item="service_station")
    assert after.quarter == "2018Q3"  # the latest recorded
    assert len(after.villages) == 3 and set(after.villages["village_code"]) == {
        "440608000001",
        "440608000002",
        "440608000003",
    }
    assert before.villages["achieved"].sum() == 0
    assert after.villages.set_index("village_code")["achieved"].to_dict() == {
        "440608000001": True,
        "440608000002": False,
        "440608000003": False,
    }
    assert after.towns.to_dict("records")[-1] == {"town": "全区", "villages": 3, "achieved": 1, "share_pct": 33.33}
