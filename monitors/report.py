"""The stored report of a monitor run: a JSON document and a self-contained HTML page.

The JSON keeps every metric, threshold and verdict (each kind's report section, its findings
and its chart data). The HTML page shows the same with charts drawn as static inline SVG
(matplotlib, Agg, text kept as text), so the page needs no JavaScript or network and converts
to PDF unchanged (WeasyPrint). Templates live in ``monitors/templates/``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from lineage.tables import utcnow
from monitors.findings import worst_status
from monitors.kinds import Chart, MonitorResult

__all__ = ["RunReport", "build_report", "render_chart_svg"]

_CURRENT = "#d9480f"
_REFERENCE = "#4263eb"
_FLAGGED = "#c92a2a"
_PLAIN = "#868e96"


@dataclass(frozen=True, slots=True)
class RunReport:
    """A rendered report: the JSON document and the HTML page."""

    document: dict[str, Any]
    html: str

    def to_json(self) -> str:
        """Return the JSON document as text (what the artifact store keeps)."""
        return json.dumps(self.document, indent=1, allow_nan=False, default=_json_default)


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


def _or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _whisker(length: float) -> float:
    return 0.0 if math.isnan(length) else max(length, 0.0)


def render_chart_svg(chart: Chart) -> str:
    """Draw one chart as an inline ``<svg>`` element (no XML prolog)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    data = chart.data
    labels = [str(label) for label in data.get("labels", [])]
    height = max(2.4, 0.28 * len(labels) + 1.0) if chart.kind != "distribution" else 2.8
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "warden", "font.size": 8}):
        figure = Figure(figsize=(7.0, height))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        if chart.kind == "distribution":
            width = 0.4
            axes.bar(
                [p - width / 2 for p in positions], data.get("reference", []), width,
                label="reference", color=_REFERENCE,
            )  # fmt: skip
            axes.bar(
                [p + width / 2 for p in positions], data.get("current", []), width,
                label="current", color=_CURRENT,
            )  # fmt: skip
            axes.set_xticks(positions, labels, rotation=45, ha="right", fontsize=6)
            axes.set_ylabel("share")
            axes.legend()
        elif chart.kind == "bars":
            values = [0.0 if value is None else float(value) for value in data.get("values", [])]
            flags = data.get("flags") or [False] * len(values)
            colours = [_FLAGGED if flag else _PLAIN for flag in flags]
            axes.barh(positions, values, color=colours)
            thresholds = data.get("thresholds")
            if thresholds:
                axes.scatter(thresholds, positions, marker="|", s=200, color="black", zorder=3)
            elif data.get("threshold") is not None:
                axes.axvline(float(data["threshold"]), color="black", linestyle="--")
            axes.set_yticks(positions, labels)
            axes.invert_yaxis()
        else:
            values = [_or_nan(value) for value in data.get("values", [])]
            lower = [_or_nan(value) for value in data.get("lower", values)]
            upper = [_or_nan(value) for value in data.get("upper", values)]
            # An unknown bound (None: too little data) draws no whisker on that side.
            errors = [
                [_whisker(v - lo) for v, lo in zip(values, lower, strict=True)],
                [_whisker(up - v) for v, up in zip(values, upper, strict=True)],
            ]
            axes.errorbar(
                values, positions, xerr=errors, fmt="o", color=_CURRENT, capsize=3,
                label=data.get("value_label") or "current (95% interval)",
            )  # fmt: skip
            references = data.get("reference") or []
            marked = [(r, p) for r, p in zip(references, positions, strict=False) if r is not None]
            if marked:
                axes.scatter(
                    [r for r, _ in marked], [p for _, p in marked], marker="|", s=200,
                    color=_REFERENCE, label=data.get("reference_label") or "reference", zorder=3,
                )  # fmt: skip
            axes.set_yticks(positions, labels)
            axes.invert_yaxis()
            axes.legend(loc="best")
        axes.set_title(chart.title, fontsize=9)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


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
    from jinja2 import Environment, PackageLoader, select_autoescape

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
    environment = Environment(
        loader=PackageLoader("monitors", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    environment.filters["num"] = _number
    environment.filters["brief"] = _brief
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
    html = environment.get_template("report.html").render(
        title=title,
        generated_at=when.isoformat(timespec="seconds"),
        status=status.value,
        meta=meta or {},
        links=links or {},
        sections=sections,
    )
    return RunReport(document=document, html=html)
