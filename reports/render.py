"""Render report documents (model cards, project reports, "as of T") as JSON, HTML and PDF.

HTML pages are self-contained and printable: inline CSS, charts drawn here as static inline SVG
(bars with confidence-interval whiskers), no JavaScript and no network, so WeasyPrint turns the
very same page into the PDF. Templates live in ``reports/templates/``; WeasyPrint is imported
only inside :func:`render_pdf`, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from lineage.errors import NotInstalled

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Format",
    "interval_chart_svg",
    "render",
    "render_html",
    "render_json",
    "render_pdf",
]

Format = Literal["html", "json", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "json", "pdf")
MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}
_TEMPLATES = {
    "as_of": "as_of.html",
    "model_card": "model_card.html",
    "project_audit": "project_audit.html",
}
_BAR = "#4263eb"
_WHISKER = "#212529"


def interval_chart_svg(rows: Sequence[dict[str, Any]], *, title: str = "") -> Markup:
    """Draw metric rows (``type``/``slice``/``value``/``confidence_interval``) as an SVG bar chart.

    Values are drawn on a 0-1 scale (rates and scores); a value outside it is clipped on the
    chart but printed exactly beside its bar. An interval is a whisker over the bar.
    """
    drawable = [r for r in rows if isinstance(r.get("value"), int | float)]
    if not drawable:
        return Markup("")
    label_width, bar_width, row_height = 220, 300, 18
    height = row_height * len(drawable) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 90}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">'
    ]
    for index, row in enumerate(drawable):
        y = 12 + index * row_height
        value = float(row["value"])
        width = max(0.0, min(1.0, value)) * bar_width
        label = row["type"] + (f" [{row['slice']}]" if row.get("slice") else "")
        parts.append(f'<text x="0" y="{y + 11}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{width:.1f}" height="{row_height - 6}" '
            f'fill="{_BAR}" />'
        )
        interval = row.get("confidence_interval")
        if interval:
            low = max(0.0, min(1.0, float(interval["lower_bound"]))) * bar_width + label_width
            high = max(0.0, min(1.0, float(interval["upper_bound"]))) * bar_width + label_width
            middle = y + row_height / 2 - 1
            parts.append(
                f'<line x1="{low:.1f}" x2="{high:.1f}" y1="{middle}" y2="{middle}" '
                f'stroke="{_WHISKER}" stroke-width="1.5" />'
            )
        parts.append(f'<text x="{label_width + bar_width + 6}" y="{y + 11}">{value:.4g}</text>')
    parts.append("</svg>")
    # Every text part above went through escape(); the rest is numbers and fixed markup.
    return Markup("".join(parts))  # noqa: S704


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value:.4g}"


@functools.cache
def _environment() -> Environment:
    """The report templates, compiled once per process."""
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    environment.globals["interval_chart"] = interval_chart_svg
    return environment


def render_json(document: dict[str, Any]) -> str:
    """Return the document as JSON text (sorted keys, so two renders of one state are equal)."""
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False, default=str)


def render_html(document: dict[str, Any]) -> str:
    """Return the document as a self-contained, printable HTML page."""
    template = _environment().get_template(_TEMPLATES[document["kind"]])
    return template.render(doc=document)


def render_pdf(html: str) -> bytes:
    """Return the HTML page as PDF (WeasyPrint, the ``pdf`` extra; needs Pango on the machine).

    Raises:
        NotInstalled: WeasyPrint (or the Pango it loads) is missing from this install.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as missing:
        raise NotInstalled(
            "PDF reports need the 'pdf' extra: pip install 'warden[pdf]' (WeasyPrint, with Pango "
            f"on the machine); ask for format html or json meanwhile ({missing})"
        ) from None

    pdf: bytes = weasyprint.HTML(string=html).write_pdf()
    return pdf


def render(document: dict[str, Any], fmt: Format) -> bytes:
    """Return the document in one of :data:`FORMATS`, encoded for a file or a response."""
    if fmt == "json":
        return render_json(document).encode()
    html = render_html(document)
    if fmt == "html":
        return html.encode()
    return render_pdf(html)
