"""What the audit log records: every action with its Chinese title, grouped into kinds to filter by.

Layer writes are recorded by the stores themselves; the side tables (conflict marks, progress records, indicator
snapshots, tokens, scenarios) record theirs through `audit_log.write_entry`, under a pseudo-layer name of their
own, so one log answers "who changed what, when" for every write (全过程留痕, GB/T 39972-2021).
"""

from __future__ import annotations

from geoplan.errors import InputError

MARKS_LAYER = "conflict_marks"
"""The pseudo-layer name conflict-patch marks carry in the audit log."""
SNAPSHOTS_LAYER = "indicator_snapshots"
"""The pseudo-layer name indicator snapshots carry in the audit log."""
TOKENS_LAYER = "tokens"
"""The pseudo-layer name token creation and revocation carry in the audit log."""
SCENARIOS_LAYER = "scenarios"
"""The pseudo-layer name scenario (规划方案) creation, edits, adoption and discarding carry in the audit log; an
adoption's layer changes are recorded under each layer, as any write."""

ACTION_TITLES: dict[str, str] = {
    "write:replace": "整层写入",
    "write:append": "新增",
    "update": "修改",
    "delete": "删除",
    "write:raster": "栅格写入",
    "progress:record": "进度填报",
    "progress:withdraw": "进度记录撤回",
    "progress:load": "进度记录导入",
    "mark:record": "图斑标记",
    "snapshot:record": "指标快照",
    "token:create": "创建令牌",
    "token:revoke": "撤销令牌",
    "scenario:create": "创建方案",
    "scenario:edit": "方案编辑",
    "scenario:adopt": "采纳方案",
    "scenario:discard": "放弃方案",
}

ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "edit": ("write:replace", "write:append", "update", "delete"),
    "raster": ("write:raster",),
    "progress": ("progress:record", "progress:withdraw", "progress:load"),
    "mark": ("mark:record",),
    "snapshot": ("snapshot:record",),
    "token": ("token:create", "token:revoke"),
    "scenario": ("scenario:create", "scenario:edit", "scenario:adopt", "scenario:discard"),
}
KIND_TITLES: dict[str, str] = {
    "edit": "图层修改",
    "raster": "栅格写入",
    "progress": "项目进度记录",
    "mark": "冲突图斑标记",
    "snapshot": "指标快照",
    "token": "令牌创建与撤销",
    "scenario": "规划方案",
}


def actions_of(kind_or_action: str) -> tuple[str, ...]:
    """The actions a filter value selects: a kind (`token`) or one action (`token:revoke`)."""
    value = kind_or_action.strip()
    if value in ACTION_KINDS:
        return ACTION_KINDS[value]
    if value in ACTION_TITLES:
        return (value,)
    known = ", ".join([*ACTION_KINDS, *ACTION_TITLES])
    zh = "、".join(f"{k}（{t}）" for k, t in KIND_TITLES.items())
    raise InputError(f"unknown action {value!r}; use one of: {known}", zh=f"未知的操作类型“{value}”：可选 {zh}。")
