"""The stored report of a monitor run: a JSON document and a self-contained HTML page.

The JSON keeps every metric, threshold and verdict (each kind's report section, its findings
and its chart data). The HTML page shows the same with charts drawn as static inline SVG
(:mod:`monitors.report_charts`, text kept as text), so the page needs no JavaScript or network
and converts to PDF unchanged (WeasyPrint). Templates live in ``monitors/templates/``.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from lineage.tables import utcnow
from monitors.findings import worst_status
from monitors.kinds import MonitorResult
from monitors.report_charts import render_chart_svg

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["RunReport", "build_report", "render_chart_svg", "report_keys", "run_folder"]


def run_folder(*, project_id: uuid.UUID, run_id: uuid.UUID) -> str:
    """Return the artifact-store folder of a run's report and pages: ids only."""
    return f"reports/{project_id}/{run_id}"


def report_keys(*, project_id: uuid.UUID, run_id: uuid.UUID) -> tuple[str, str]:
    """Return the keys of a run's JSON and HTML reports in the artifact store."""
    folder = run_folder(project_id=project_id, run_id=run_id)
    return f"{folder}/report.json", f"{folder}/report.html"


@dataclass(frozen=True, slots=True)
class RunReport:
    """A rendered report: the JSON document and the HTML page."""

    document: dict[str, Any]
    html: str

    def to_json(self) -> str:
        """Return the JSON document as text (what the artifact store keeps).

        orjson: a drift report carries every column's histograms, and the standard library's
        encoder took longer than the statistics of a small window.
        """
        import orjson

        options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        return orjson.dumps(self.document, option=options, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _clean(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) with ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _brief(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, list | dict):
            if not value:
                continue
            text = json.dumps(value, default=str)
            value = text if len(text) <= 60 else text[:57] + "…"
        elif isinstance(value, float):
            value = _number(value)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


@functools.cache
def _templates() -> Environment:
    """The report templates, compiled once per process (compiling costs more than rendering)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("monitors", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    environment.filters["num"] = _number
    environment.filters["brief"] = _brief
    return environment


def build_report(
    results: Sequence[MonitorResult],
    *,
    title: str,
    meta: dict[str, Any] | None = None,
    generated_at: datetime | None = None,
    links: dict[str, str] | None = None,
) -> RunReport:
    """Build the JSON document and the HTML page of one run (one section per kind run).

    Args:
        results: What each kind returned; fairness and explanations sections render alike.
        title: The page title (monitor and deployment names, say).
        meta: Extra facts shown in a table and kept in the JSON (run id, window, baseline).
        generated_at: When the report was built (default: now, UTC).
        links: Companion pages, label → relative URL (Evidently's drift page, say), linked
            from the HTML page and kept in the JSON so readers find them.
    """
    when = generated_at or utcnow()
    status = worst_status([result.status for result in results])
    document = _clean(
        {
            "format": "warden.report/1",
            "title": title,
            "generated_at": when.isoformat(),
            "status": status.value,
            "meta": meta or {},
            "links": links or {},
            "results": [result.to_dict() for result in results],
        }
    )
    sections = [
        {
            "kind": result.kind,
            "status": result.status.value,
            "rows": result.rows,
            "seconds": result.seconds,
            "findings": [finding.to_dict() for finding in result.findings],
            "comparison": result.report.get("comparison") or [],
            "caveats": result.report.get("caveats") or [],
            "slice_rates": (result.report.get("slices") or {}).get("fairness") or [],
            "charts": [
                {"title": chart.title, "svg": Markup(render_chart_svg(chart))}  # noqa: S704
                for chart in result.charts
            ],
        }
        for result in results
    ]
    html = (
        _templates()
        .get_template("report.html")
        .render(
            title=title,
            generated_at=when.isoformat(timespec="seconds"),
            status=status.value,
            meta=meta or {},
            links=links or {},
            sections=sections,
        )
    )
    return RunReport(document=document, html=html)
