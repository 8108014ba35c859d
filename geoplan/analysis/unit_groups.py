"""Reporting groups of the statistical units: each village or community under its town, virtual units apart.

The census lists prisons, state farms and forest farms (佛山监狱, 高明监狱, 云勇林场, 对川茶场) as virtual units
(虚拟单位, villages.type == virtual). Their `town` field names the unit itself, so a table grouped by `town`
would show them as towns and hold them to a town's targets. They are reported in one group of their own, and
counted in the district total only.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

__all__ = ["DISTRICT", "TYPE_ZH", "VIRTUAL_GROUP", "VIRTUAL_TYPE", "group_of", "type_zh"]

VIRTUAL_TYPE = "virtual"
VIRTUAL_GROUP = "虚拟单位"
DISTRICT = "全区"
TYPE_ZH = {"community": "社区", "village": "村", VIRTUAL_TYPE: "虚拟单位"}


def group_of(units: pd.DataFrame | gpd.GeoDataFrame) -> pd.Series:
    """Each unit's reporting group: its town, or VIRTUAL_GROUP for a virtual unit (aligned with `units`)."""
    virtual = units["type"].astype(str).isin([VIRTUAL_TYPE, TYPE_ZH[VIRTUAL_TYPE]]).to_numpy()  # code or label
    return pd.Series(units["town"].astype(str).where(~virtual, VIRTUAL_GROUP), index=units.index, name="group")


def type_zh(types: pd.Series) -> pd.Series:
    """Unit types in Chinese (社区, 村, 虚拟单位); an unknown code is shown as it is."""
    return types.astype(str).map(lambda t: TYPE_ZH.get(t, t))
