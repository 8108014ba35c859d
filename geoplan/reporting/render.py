"""The report formats: name -> writer, media type and suffix (the CLI picks by the output's suffix, the web API
by `format=`). The quarterly report and the plan-end evaluation come in the same three formats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geoplan.errors import InputError
from geoplan.reporting.report_data import ReportData

if TYPE_CHECKING:
    from geoplan.reporting.evaluation_data import EvaluationData

__all__ = ["FORMATS", "ReportFormat", "format_for_path", "render_evaluation", "render_report"]


@dataclass(frozen=True)
class ReportFormat:
    name: str
    suffixes: tuple[str, ...]
    media_type: str

    def render(self, data: ReportData) -> bytes:
        return _writer(self.name)(data)

    def render_evaluation(self, data: EvaluationData) -> bytes:
        return _evaluation_writer(self.name)(data)


FORMATS: dict[str, ReportFormat] = {
    f.name: f
    for f in (
        ReportFormat("xlsx", (".xlsx",), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ReportFormat("html", (".html", ".htm"), "text/html; charset=utf-8"),
        ReportFormat("pdf", (".pdf",), "application/pdf"),
    )
}


def _writer(name: str) -> Callable[[ReportData], bytes]:
    # Imported on use: each writer pulls in its own library (openpyxl, jinja2, matplotlib's PDF backend).
    if name == "xlsx":
        from geoplan.reporting.report_xlsx import render_xlsx

        return render_xlsx
    if name == "html":
        from geoplan.reporting.report_html import render_html

        return render_html
    from geoplan.reporting.report_pdf import render_pdf

    return render_pdf


def _evaluation_writer(name: str) -> Callable[[EvaluationData], bytes]:
    if name == "xlsx":
        from geoplan.reporting.evaluation_xlsx import render_evaluation_xlsx

        return render_evaluation_xlsx
    if name == "html":
        from geoplan.reporting.evaluation_html import render_evaluation_html

        return render_evaluation_html
    from geoplan.reporting.evaluation_pdf import render_evaluation_pdf

    return render_evaluation_pdf


def format_for_path(path: Path) -> ReportFormat:
    suffix = path.suffix.lower()
    for candidate in FORMATS.values():
        if suffix in candidate.suffixes:
            return candidate
    known = ", ".join(s for f in FORMATS.values() for s in f.suffixes)
    raise InputError(f"-o {path.name}: the report is written as {known}, not {suffix or 'a file without suffix'!r}")


def render_report(data: ReportData, name: str) -> bytes:
    if name not in FORMATS:
        raise InputError(f"unknown report format {name!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[name].render(data)


def render_evaluation(data: EvaluationData, name: str) -> bytes:
    if name not in FORMATS:
        raise InputError(f"unknown report format {name!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[name].render_evaluation(data)
