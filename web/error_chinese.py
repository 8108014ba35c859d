"""The Chinese message (`detail_zh`) of every 4xx/5xx body, for the pages people read.

The API's `detail` stays English (clients, logs); a page shows `detail_zh`. A raise site that knows what went
wrong gives `InputError(..., zh=...)`; everything else gets a sentence here, chosen by the error's class or the
HTTP status, so no page is ever left with English only. Known English messages of the web layer (token refused,
upload too large, no such layer) are recognised and said in full.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from geoplan.errors import (
    CRSError,
    InputError,
    NotFoundError,
    UnreadableFileError,
    ValidationFailed,
)

READ_ONLY_ZH = "只读副本，暂不能写入：请在主库上修改。"
INTERNAL_ZH = "服务器内部错误，请稍后重试或联系管理员。"
CRS_ZH = "坐标系有问题：文件未声明坐标系、坐标系无法识别，或与坐标不符。请指明坐标系（如 EPSG:4547、gcj02）。"

CONFLICT_REASON_ZH = {
    "changed": "现状中已被修改",
    "deleted": "现状中已被删除",
    "created": "现状中已新增同编号要素",
}
"""Why a feature of a stale scenario conflicts (geoplan.services.scenarios.REASON_TITLES, said for the web)."""

ROLE_ZH = {
    "public": "公众（无令牌）",
    "staff": "工作人员（staff）",
    "planner": "规划（planner）",
    "admin": "管理员（admin）",
}

STATUS_ZH = {
    400: "请求有误，请检查输入后重试。",
    401: "需要有效的令牌：令牌缺失、无效或已被撤销，请重新输入。",
    403: "此令牌的角色不足，无权进行此操作。",
    404: "未找到请求的内容。",
    405: "不支持此请求方式。",
    406: "不支持请求的格式。",
    409: "与现有数据冲突，请刷新后重试。",
    413: "上传的文件或请求内容过大。",
    415: "不支持此内容类型。",
    422: "输入的内容无法通过校验，请检查后重试。",
    429: "请求过于频繁，请稍后重试。",
    503: "服务暂不可用，请稍后重试。",
}

# Messages the web layer raises as HTTPException, in Chinese (pattern on `detail` -> template).
_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"use 'Authorization: Bearer"), "令牌格式不对：请只粘贴令牌本身。"),
    (re.compile(r"unknown or revoked token"), "令牌无效或已被撤销，请重新输入。"),
    (re.compile(r"this needs a token"), "此操作需要令牌，请先输入令牌。"),
    (re.compile(r"larger than (?:the )?([\d,]+)"), "上传的文件或请求内容过大：上限为 {mb} MB。"),
    (re.compile(r"no (collection|layer) '(.+)'"), "未找到图层“{1}”（或无权查看）。"),
    (re.compile(r"no conflict patch '?([^']*)'?"), "未找到冲突图斑“{0}”。"),
    (re.compile(r"no tile package is configured"), "未配置底图瓦片包。"),
    (re.compile(r"tile .* is not in the basemap package"), "底图瓦片包中没有该瓦片。"),
    (re.compile(r"has no id field"), "此图层没有编号字段，不能按编号修改。"),
)
_ROLE_403 = re.compile(r"needs the (\w+) role; your token is (\w+)")


def zh_for_http(status: int, detail: object) -> str:
    """The Chinese of an HTTPException: a known message said in full, else a sentence by status."""
    if isinstance(detail, list):  # pydantic's errors of a JSON body the route validated itself
        return zh_for_validation(detail, where="body")
    text = str(detail)
    if status == 403 and (role := _ROLE_403.search(text)):
        need, have = (ROLE_ZH.get(r, r) for r in role.groups())
        return f"此令牌的角色不足：需要{need}或更高角色，当前为{have}。"
    for pattern, template in _KNOWN:
        found = pattern.search(text)
        if found:
            groups = found.groups()
            mb = ""
            if groups and groups[0] and groups[0].replace(",", "").isdigit():
                mb = f"{int(groups[0].replace(',', '')) / (1024 * 1024):g}"
            return template.format(*groups, mb=mb)
    return STATUS_ZH.get(status, f"请求未被接受（HTTP {status}）。" if status < 500 else INTERNAL_ZH)


def zh_for_error(exc: Exception) -> str:
    """The Chinese of one of geoplan's typed errors: its own `zh`, else a sentence by its class."""
    own = getattr(exc, "zh", "")
    if own:
        return str(own)
    if isinstance(exc, ValidationFailed):
        return zh_for_problems(exc)
    message = str(exc)
    if isinstance(exc, NotFoundError):
        return "未找到请求的内容" + _quoted_name(message) + "。"
    if isinstance(exc, CRSError):
        return (
            "坐标系有问题：文件未声明坐标系、坐标系无法识别，或与坐标不符。请在“坐标系”中指明（如 EPSG:4547、gcj02）。"
        )
    if isinstance(exc, UnreadableFileError):
        if "import limit" in message:
            return "文件过大，超过导入上限。"
        if "the file is empty" in message:
            return "文件是空的。"
        return "文件无法读取：格式不对、已损坏或不是受支持的地理数据文件。"
    if isinstance(exc, InputError):
        return "输入有误：" + _input_hint(message)
    return INTERNAL_ZH


def _quoted_name(message: str) -> str:
    found = re.search(r"'([^']{1,80})'", message)
    return f"“{found.group(1)}”" if found else ""


# Common InputError wordings (geoplan's readers and the site check) said in Chinese.
_INPUT_HINTS: tuple[tuple[str, str], ...] = (
    ("not valid JSON", "请求内容不是有效的 JSON。"),
    ("which JSON does not allow", "请求内容含有 JSON 不允许的 NaN 或 Infinity。"),
    ("too large for a float", "请求内容中有数值过大。"),
    ("nests arrays and objects deeper", "请求内容的 JSON 嵌套过深。"),
    ("unsupported file type", "不支持此文件类型：请上传 GeoJSON、Shapefile（zip）、GeoPackage、KML、CSV 或 Excel 等。"),
    ("multipart/form-data", "请以表单上传文件（字段名 file）。"),
    ("must be a polygon", "选址范围必须是面（多边形），不能是点或线。"),
    ("no geometry", "选址没有几何图形（为空）：请提供选址范围的面。"),
    ("no features", "文件中没有任何要素。"),
    ("no coordinate system", "选址没有坐标系：请在“坐标系”中指明。"),
    ("no area", "选址几乎没有面积：请提供选址范围的面。"),
    ("not all finite numbers", "选址的坐标不全是有效数字。"),
    ("holds no features", "文件中没有任何要素。"),
    ("layers (", "文件含有多个图层，请指明要用哪一个。"),
    ("datasets (", "压缩包含有多个数据集，请指明要用哪一个。"),
)


def _input_hint(message: str) -> str:
    for needle, zh in _INPUT_HINTS:
        if needle in message:
            return zh
    return "请检查输入的内容、参数或文件后重试。"


def zh_for_problems(exc: ValidationFailed) -> str:
    """ "文件有 N 处问题：…": the fields concerned by their catalogue titles where the raise site gave them."""
    titles: dict[str, str] = getattr(exc, "titles", {}) or {}
    shown: list[str] = []
    for problem in exc.problems:
        field = problem.field
        label = f"字段“{titles.get(field, field)}”" if field is not None else "几何或整体"
        where = f"要素 {problem.feature} 的" if problem.feature is not None else ""
        item = where + label
        if item not in shown:
            shown.append(item)
        if len(shown) == 5:
            break
    more = "等" if len(exc.problems) > len(shown) else ""
    # An upload is a file; a record typed into a form is not.
    what = "文件" if re.search(r"\.\w{2,8}$", exc.source) else "提交的数据"
    return f"{what}有 {len(exc.problems)} 处问题：{'、'.join(shown)}{more}有误，请修改后重试。"


_LOCATION_ZH = {"query": "查询参数", "path": "路径参数", "header": "请求头", "cookie": "Cookie", "body": "请求内容"}


def zh_for_validation(errors: Sequence[Any], *, where: str = "") -> str:
    """FastAPI's (or pydantic's) 422 in Chinese: the first parameter named, with what it must be."""
    if not errors:
        return STATUS_ZH[422]
    first = dict(errors[0])
    loc = [str(part) for part in first.get("loc", ())]
    kind = where or (loc[0] if loc else "")
    names = [part for part in loc if part not in _LOCATION_ZH] if not where else loc
    name = ".".join(names) or _LOCATION_ZH.get(kind, "请求内容")
    what = _LOCATION_ZH.get(kind, "参数")
    need = _need(first)
    more = f"（另有 {len(errors) - 1} 处问题）" if len(errors) > 1 else ""
    return f"{what} {name} 无效：{need}{more}。"


def _allowed(msg: str) -> str:
    """ "Input should be 'network' or 'euclidean'" -> "（'network' 或 'euclidean'）"."""
    if "should be " not in msg:
        return ""
    return "（" + msg.split("should be ", 1)[1].replace(" or ", " 或 ") + "）"


def _need(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    msg = str(error.get("msg", ""))
    bound = re.search(r"(-?[\d.]+(?:e[+-]?\d+)?)\s*$", msg)
    number = bound.group(1) if bound else ""
    needs = {
        "missing": "缺少此项",
        "greater_than": f"应大于 {number}",
        "greater_than_equal": f"应不小于 {number}",
        "less_than": f"应小于 {number}",
        "less_than_equal": f"应不大于 {number}",
        "int_parsing": "应为整数",
        "int_from_float": "应为整数",
        "float_parsing": "应为数字",
        "finite_number": "应为有限的数字",
        "bool_parsing": "应为 true 或 false",
        "literal_error": "取值不在允许范围内" + _allowed(msg),
        "enum": "取值不在允许范围内",
        "string_too_long": "文字过长",
        "string_too_short": "文字过短",
        "string_pattern_mismatch": "格式不对",
        "date_from_datetime_parsing": "应为日期（如 2026-12-31）",
        "datetime_from_date_parsing": "应为日期时间",
        "date_parsing": "应为日期（如 2026-12-31）",
        "datetime_parsing": "应为日期时间（如 2026-12-31T08:00）",
        "model_attributes_type": "应为对象",
        "dict_type": "应为对象",
        "list_type": "应为列表",
        "string_type": "应为文字",
        "extra_forbidden": "不允许此项",
        "json_invalid": "不是有效的 JSON",
    }
    return needs.get(kind, "取值无效")
