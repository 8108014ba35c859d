"""The plan-end evaluation's tables as plain rows, shared by its three writers (workbook, HTML, PDF) so they show
the same headings, the same order and the same words. Numbers stay numbers here; the HTML and the PDF write them
with `formatting.value_text`, the workbook keeps them as numbers."""

from __future__ import annotations

from typing import Any

from geoplan.monitoring.project_outcomes import OUTCOMES, STALLED_QUARTERS
from geoplan.reporting.compliance_html import SEVERITY_ZH
from geoplan.reporting.evaluation_data import EvaluationData
from geoplan.reporting.formatting import target_text

__all__ = [
    "CONFLICT_HEADER",
    "OUTCOME_HEADER",
    "STALLED_NOTE",
    "VILLAGE_HEADER",
    "conflict_rows",
    "conflict_summary",
    "indicator_header",
    "moment_heading",
    "outcome_rows",
    "plan_lines",
    "project_header",
    "project_rows",
    "verdict_target",
    "village_rows",
]

OUTCOME_HEADER = ["任务领域", *OUTCOMES.values(), "其中停滞", "项目数"]
STALLED_NOTE = (
    f"停滞：已开工、未完工，且最近 {STALLED_QUARTERS} 个季度进度没有提高（另计，同时计入逾期未完成或推进中）；"
    "按期：在计划完成年份第四季度末前完工。"
)
PROJECT_HEADER = ["项目编号", "项目名称", "任务领域", "开工年份", "完成年份", "状态", "进度（%）", "完工季度", "结果"]


def moment_heading(data: EvaluationData, index: int) -> str:
    """计划起点（2017Q3）: a value column's label with its quarter."""
    label, moment = data.moments[index]
    return f"{label}（{moment.quarter}）"


def plan_lines(data: EvaluationData) -> list[tuple[str, str]]:
    """The plan as data (layers/plan.yaml) and what the evaluation describes, as (name, text) pairs."""
    plan = data.plan
    milestones = "；".join(
        f"{m.year} 年 {m.title_zh}（{m.note}）" if m.note else f"{m.year} 年 {m.title_zh}" for m in plan.milestones
    )
    lines = [
        ("行动计划", plan.title_zh),
        ("计划期", f"{plan.start}—{plan.end}"),
        ("监测至", str(plan.monitored_until)),
        ("节点年份", milestones),
    ]
    lines += [(moment_heading(data, i), f"{data.moment_local(m)}（北京时间）") for i, (_, m) in enumerate(data.moments)]
    lines += [
        ("项目数", str(len(data.outcomes))),
        ("指标数", str(len(data.indicators))),
        ("快照次数", str(len(data.final.snapshots))),
        ("生成时间", f"{data.generated_local}（北京时间）"),
        ("合成（示意）数据图层", "、".join(data.synthetic_titles or data.synthetic) or "无"),
    ]
    return lines


def outcome_rows(data: EvaluationData) -> list[list[Any]]:
    """Per task area (and 合计): the count of each outcome, of them stalled, and all projects."""
    table = data.outcome_counts
    return [[str(area), *(int(v) for v in table.loc[area])] for area in table.index]


def project_header() -> list[str]:
    return [*PROJECT_HEADER, "停滞"]


def project_rows(data: EvaluationData) -> list[list[Any]]:
    """Every project: its ledger state at the end of the monitoring and its outcome, by task area then id."""
    order = {area: i for i, area in enumerate(data.task_areas)}
    records = sorted(
        data.outcomes.to_dict("records"), key=lambda r: (order.get(str(r["task_area"]), len(order)), r["project_id"])
    )
    return [
        [
            r["project_id"],
            r["name"],
            r["task_area"],
            int(r["start_year"]),
            int(r["end_year"]),
            r["status"],
            float(r["progress_pct"]),
            r["finished_quarter"] or "—",
            r["outcome_zh"],
            "是" if r["stalled"] else "否",
        ]
        for r in records
    ]


def indicator_header(data: EvaluationData) -> list[str]:
    moments = [moment_heading(data, i) for i in range(len(data.moments))]
    milestones = [
        part
        for milestone, quarter in data.milestones
        for part in (f"{milestone.year} 年目标", f"{milestone.year} 年结论（{quarter}）")
    ]
    return ["指标 id", "指标", "单位", *moments, "变化（末−起）", *milestones]


def verdict_target(target: Any, unit: str) -> str:
    return "无目标" if target is None else target_text(target.comparison, target.value, target.year, unit)


def conflict_summary(data: EvaluationData) -> list[tuple[str, int, float]]:
    """(what, patches, hectares): the conflicts at the start and the end, resolved, new and remaining (exempt
    patches apart: listed, never counted, as in the conflict indicators)."""
    change = data.conflicts
    exempt = [change.count(s, exempt=True) for s in ("resolved", "new", "remaining")]
    exempt_area = [change.area_ha(s, exempt=True) for s in ("resolved", "new", "remaining")]
    return [
        ("计划起点的冲突图斑", *change.totals(change.start)),
        ("评估截至的冲突图斑", *change.totals(change.end)),
        ("已化解（起点有、评估截至已无）", change.count("resolved"), change.area_ha("resolved")),
        ("新增（起点没有、评估截至有）", change.count("new"), change.area_ha("new")),
        ("仍存在（两时点都有）", change.count("remaining"), change.area_ha("remaining")),
        ("豁免图斑（列出，不计入以上各行）", sum(exempt), sum(exempt_area)),
    ]


CONFLICT_HEADER = ["图斑编号", "规则", "严重程度", "镇街", "面积（公顷）", "豁免", "变化", "规划师标记（评估截至）"]


def conflict_rows(data: EvaluationData) -> list[list[Any]]:
    """Every patch seen at the start or the end: resolved first, then new, then remaining (largest first)."""
    return [
        [
            r["patch_id"],
            r["rule_title"],
            SEVERITY_ZH.get(str(r["severity"]), str(r["severity"]) or "—"),
            r["town"] or "—",
            float(r["area_ha"]),
            "是" if r["exempt"] else "否",
            r["state_zh"],
            r["mark"] or "未标记",
        ]
        for r in data.conflicts.table.to_dict("records")
    ]


VILLAGE_HEADER = ["统计用区划代码", "村（社区）", "计划起点覆盖率（%）", "评估截至覆盖率（%）", "变化（百分点）"]


def village_rows(data: EvaluationData) -> list[list[Any]]:
    """Every village: coverage then and now and the change (None where a village has no people)."""
    villages = data.villages
    names = villages["village_name"] if "village_name" in villages.columns else villages["village_code"]
    return [
        [str(code), str(name), start, end, change]
        for code, name, start, end, change in zip(
            villages["village_code"],
            names,
            villages["coverage_start"],
            villages["coverage_end"],
            villages["change_pp"],
            strict=True,
        )
    ]
