"""A monitor report's charts, drawn as inline SVG by hand.

A drift run has a chart per column; laying each out with a plotting library took seconds per
chart on the worker, longer than the statistic itself on a million rows. These three shapes —
horizontal bars against thresholds, reference-vs-current shares, values with intervals — are a
few rectangles, lines and text elements: text stays text (searchable, converts to PDF
unchanged), colours are inline (the page carries no stylesheet for them), no scripts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import escape

from monitors.kinds import Chart

__all__ = ["render_chart_svg"]

_CURRENT = "#d9480f"
_REFERENCE = "#4263eb"
_FLAGGED = "#c92a2a"
_PLAIN = "#868e96"
_WIDTH = 680
_LABELS = 190
_RIGHT = 30
_TOP = 30
_ROW = 18
_FONT = 'font-family="sans-serif" font-size="10"'


def _number(value: float) -> str:
    return f"{value:.3g}"


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for value in values:
        if value is not None and math.isfinite(float(value)):
            out.append(float(value))
    return out


class _Scale:
    """Map values to x positions over the plot area, zero included."""

    def __init__(self, values: Sequence[float], left: float, right: float) -> None:
        low = min([0.0, *values])
        high = max([0.0, *values])
        self.low, self.span = low, (high - low) or 1.0
        self.left, self.width = left, right - left
        self.high = high

    def __call__(self, value: float) -> float:
        return self.left + self.width * (value - self.low) / self.span


def _open(title: str, height: float) -> list[str]:
    label = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height:.0f}" '
        f'width="{_WIDTH}" height="{height:.0f}" role="img" aria-label="{label}">'
        f"<title>{label}</title>",
        f'<text x="{_WIDTH / 2}" y="16" text-anchor="middle" font-family="sans-serif" '
        f'font-size="12">{label}</text>',
    ]


def _axis(scale: _Scale, bottom: float, top: float) -> list[str]:
    parts = [
        f'<line x1="{scale.left}" y1="{bottom}" x2="{scale.left + scale.width}" y2="{bottom}" '
        'stroke="#495057"/>'
    ]
    for value in sorted({scale.low, 0.0, scale.high}):
        x = scale(value)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#dee2e6"/>'
            f'<text x="{x:.1f}" y="{bottom + 12}" text-anchor="middle" {_FONT}>'
            f"{_number(value)}</text>"
        )
    return parts


def _row_label(text: str, y: float) -> str:
    return (
        f'<text x="{_LABELS - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{escape(text)}</text>'
    )


def _bars(chart: Chart) -> str:
    data = chart.data
    labels = [str(label) for label in data.get("labels", [])]
    values = [0.0 if v is None else float(v) for v in data.get("values", [])]
    flags = data.get("flags") or [False] * len(values)
    thresholds = data.get("thresholds") or []
    line = data.get("threshold")
    scale = _Scale(_finite([*values, *thresholds, line]), _LABELS, _WIDTH - _RIGHT)
    bottom = _TOP + _ROW * len(labels) + 4
    parts = _open(chart.title, bottom + 20)
    parts += _axis(scale, bottom, _TOP)
    for index, (label, value) in enumerate(zip(labels, values, strict=False)):
        y = _TOP + _ROW * index + _ROW / 2
        start, end = sorted((scale(0.0), scale(value) if math.isfinite(value) else scale(0.0)))
        colour = _FLAGGED if index < len(flags) and flags[index] else _PLAIN
        parts.append(_row_label(label, y))
        parts.append(
            f'<rect x="{start:.1f}" y="{y - _ROW * 0.35:.1f}" width="{end - start:.1f}" '
            f'height="{_ROW * 0.7:.1f}" fill="{colour}"><title>{escape(label)}: '
            f"{_number(value)}</title></rect>"
        )
        if index < len(thresholds) and thresholds[index] is not None:
            x = scale(float(thresholds[index]))
            parts.append(
                f'<line x1="{x:.1f}" y1="{y - _ROW / 2:.1f}" x2="{x:.1f}" y2="{y + _ROW / 2:.1f}" '
                'stroke="black" stroke-width="2"/>'
            )
    if line is not None and not thresholds:
        x = scale(float(line))
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{bottom}" stroke="black" '
            'stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _intervals(chart: Chart) -> str:
    data = chart.data
    labels = [str(label) for label in data.get("labels", [])]
    values = list(data.get("values", []))
    lower = list(data.get("lower", values))
    upper = list(data.get("upper", values))
    references = list(data.get("reference") or [])
    scale = _Scale(_finite([*values, *lower, *upper, *references]), _LABELS, _WIDTH - _RIGHT)
    bottom = _TOP + _ROW * len(labels) + 4
    parts = _open(chart.title, bottom + 34)
    parts += _axis(scale, bottom, _TOP)
    for index, label in enumerate(labels):
        y = _TOP + _ROW * index + _ROW / 2
        parts.append(_row_label(label, y))
        value = values[index] if index < len(values) else None
        if value is None:
            continue
        x = scale(float(value))
        # An unknown bound (None: too little data) draws no whisker on that side.
        low = lower[index] if index < len(lower) and lower[index] is not None else value
        high = upper[index] if index < len(upper) and upper[index] is not None else value
        parts.append(
            f'<line x1="{scale(float(low)):.1f}" y1="{y:.1f}" x2="{scale(float(high)):.1f}" '
            f'y2="{y:.1f}" stroke="{_CURRENT}"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{_CURRENT}"><title>'
            f"{escape(label)}: {_number(float(value))} [{_number(float(low))}, "
            f"{_number(float(high))}]</title></circle>"
        )
        if index < len(references) and references[index] is not None:
            r = scale(float(references[index]))
            parts.append(
                f'<line x1="{r:.1f}" y1="{y - 7:.1f}" x2="{r:.1f}" y2="{y + 7:.1f}" '
                f'stroke="{_REFERENCE}" stroke-width="2"/>'
            )
    parts.append(
        f'<circle cx="{_LABELS + 6}" cy="{bottom + 26}" r="3.5" fill="{_CURRENT}"/>'
        f'<text x="{_LABELS + 14}" y="{bottom + 30}" {_FONT}>'
        f"{escape(data.get('value_label') or 'current (95% interval)')}</text>"
    )
    if any(r is not None for r in references):
        parts.append(
            f'<line x1="{_LABELS + 160}" y1="{bottom + 20}" x2="{_LABELS + 160}" '
            f'y2="{bottom + 32}" stroke="{_REFERENCE}" stroke-width="2"/>'
            f'<text x="{_LABELS + 166}" y="{bottom + 30}" {_FONT}>'
            f"{escape(data.get('reference_label') or 'reference')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _distribution(chart: Chart) -> str:
    data = chart.data
    labels = [str(label) for label in data.get("labels", [])]
    reference = [0.0 if v is None else float(v) for v in data.get("reference", [])]
    current = [0.0 if v is None else float(v) for v in data.get("current", [])]
    left, right, top, plot = 50, _WIDTH - _RIGHT, _TOP + 14, 150
    bottom = top + plot
    high = max(_finite([*reference, *current]) or [1.0]) or 1.0
    parts = _open(chart.title, bottom + 70)
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#495057"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT}>{_number(high)}</text>'
        f'<text x="{left - 4}" y="{bottom}" text-anchor="end" {_FONT}>0</text>'
        f'<text x="12" y="{top + plot / 2}" {_FONT} transform="rotate(-90 12 {top + plot / 2})" '
        'text-anchor="middle">share</text>'
        f'<rect x="{right - 150}" y="{_TOP - 8}" width="9" height="9" fill="{_REFERENCE}"/>'
        f'<text x="{right - 137}" y="{_TOP}" {_FONT}>reference</text>'
        f'<rect x="{right - 75}" y="{_TOP - 8}" width="9" height="9" fill="{_CURRENT}"/>'
        f'<text x="{right - 62}" y="{_TOP}" {_FONT}>current</text>'
    )
    slot = (right - left) / max(len(labels), 1)
    for index, label in enumerate(labels):
        x = left + slot * index
        for offset, shares, colour, side in (
            (0.1, reference, _REFERENCE, "reference"),
            (0.5, current, _CURRENT, "current"),
        ):
            share = shares[index] if index < len(shares) and math.isfinite(shares[index]) else 0.0
            height = plot * max(share, 0.0) / high
            parts.append(
                f'<rect x="{x + slot * offset:.1f}" y="{bottom - height:.1f}" '
                f'width="{slot * 0.4:.1f}" height="{height:.1f}" fill="{colour}"><title>'
                f"{escape(label)} ({side}): {_number(share)}</title></rect>"
            )
        centre = x + slot / 2
        parts.append(
            f'<text x="{centre:.1f}" y="{bottom + 10}" text-anchor="end" font-family="sans-serif" '
            f'font-size="7" transform="rotate(-45 {centre:.1f} {bottom + 10})">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_chart_svg(chart: Chart) -> str:
    """Draw one chart as an inline ``<svg>`` element (no XML prolog)."""
    if chart.kind == "distribution":
        return _distribution(chart)
    if chart.kind == "bars":
        return _bars(chart)
    return _intervals(chart)
