"""Server-drawn SVG for the dashboard: status-over-time line charts and the lineage graph.

Drawn in Python as inline SVG so pages need no JavaScript, no chart library and no network, load
fast on modest hardware, and print. Every chart has a ``<title>`` and an ``aria-label`` (screen
readers announce it) and every point a tooltip; the numbers are also in the page's tables.
Graph nodes are SVG links: focusable with the keyboard and followed with Enter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["GraphNode", "Point", "WaterfallRow", "line_chart", "lineage_svg", "waterfall_svg"]

Point = tuple[datetime, float]
_PALETTE = ("#1c7ed6", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#495057")
_WIDTH, _HEIGHT, _PAD_LEFT, _PAD_RIGHT, _PAD_Y = 640, 220, 48, 150, 24


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    *,
    threshold: float | None = None,
    empty: str = "no judged runs yet.",
) -> Markup:
    """Draw one or more time series (oldest first) as an accessible SVG line chart.

    Args:
        title: What the chart shows; also its accessible name.
        series: Label → points, most important first; labels beyond the palette's eight are
            dropped.
        threshold: A dashed horizontal line (the alerting threshold), when there is one.
        empty: What to say after the title when there are no points.
    """
    kept = list(series.items())[: len(_PALETTE)]
    values = [v for _, points in kept for _, v in points]
    times = [t for _, points in kept for t, _ in points]
    label = escape(title)
    if not values:
        return Markup(f'<p class="empty">{label}: {escape(empty)}</p>')  # noqa: S704 - escaped
    low = min([*values, threshold] if threshold is not None else values)
    high = max([*values, threshold] if threshold is not None else values)
    low, high = (min(low, 0.0), high) if low >= 0 else (low, high)
    span = (high - low) or 1.0
    first, last = min(times), max(times)
    seconds = (last - first).total_seconds() or 1.0
    plot_w = _WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = _HEIGHT - 2 * _PAD_Y

    def x(when: datetime) -> float:
        if first == last:
            return _PAD_LEFT + plot_w / 2
        return _PAD_LEFT + plot_w * (when - first).total_seconds() / seconds

    def y(value: float) -> float:
        return _PAD_Y + plot_h * (1 - (value - low) / span)

    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>',
        f'<line class="axis" x1="{_PAD_LEFT}" y1="{_PAD_Y}" x2="{_PAD_LEFT}" '
        f'y2="{_HEIGHT - _PAD_Y}"/>',
        f'<line class="axis" x1="{_PAD_LEFT}" y1="{_HEIGHT - _PAD_Y}" '
        f'x2="{_PAD_LEFT + plot_w}" y2="{_HEIGHT - _PAD_Y}"/>',
        f'<text class="tick" x="{_PAD_LEFT - 4}" y="{y(high) + 4:.1f}" '
        f'text-anchor="end">{_fmt(high)}</text>',
        f'<text class="tick" x="{_PAD_LEFT - 4}" y="{y(low) + 4:.1f}" '
        f'text-anchor="end">{_fmt(low)}</text>',
        f'<text class="tick" x="{_PAD_LEFT}" y="{_HEIGHT - 6}">'
        f"{escape(first.strftime('%Y-%m-%d %H:%M'))}</text>",
        f'<text class="tick" x="{_PAD_LEFT + plot_w}" y="{_HEIGHT - 6}" text-anchor="end">'
        f"{escape(last.strftime('%Y-%m-%d %H:%M'))}</text>",
    ]
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{_PAD_LEFT}" y1="{y(threshold):.1f}" '
            f'x2="{_PAD_LEFT + plot_w}" y2="{y(threshold):.1f}"><title>threshold '
            f"{_fmt(threshold)}</title></line>"
        )
    for index, (name, points) in enumerate(kept):
        color = _PALETTE[index]
        ordered = sorted(points)
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in ordered)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for when, value in ordered:
            parts.append(
                f'<circle cx="{x(when):.1f}" cy="{y(value):.1f}" r="3.5" fill="{color}">'
                f"<title>{escape(name)}: {_fmt(value)} at "
                f"{escape(when.isoformat(timespec='minutes'))}</title></circle>"
            )
        legend_y = _PAD_Y + 16 * index
        parts.append(
            f'<rect x="{_WIDTH - _PAD_RIGHT + 12}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{color}"/><text class="legend" x="{_WIDTH - _PAD_RIGHT + 26}" '
            f'y="{legend_y}">{escape(name[:22])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated string is escaped above


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node of the lineage graph.

    Attributes:
        key: Unique id used by edges.
        label: The text shown (shortened to fit).
        href: Where clicking (or Enter) leads; ``None`` for a node without a page.
        current: Whether this is the page's own node (drawn emphasised).
    """

    key: str
    label: str
    href: str | None = None
    current: bool = False


_COL_W, _NODE_W, _NODE_H, _ROW_H, _TOP = 210, 180, 34, 50, 36


def lineage_svg(
    columns: Sequence[tuple[str, Sequence[GraphNode]]], edges: Sequence[tuple[str, str]]
) -> Markup:
    """Draw a left-to-right layered graph (data → runs → versions → deployments) as SVG.

    Args:
        columns: Column heading and its nodes, left to right.
        edges: ``(from key, to key)`` pairs; edges to unknown keys are skipped.
    """
    rows = max((len(nodes) for _, nodes in columns), default=0)
    width = max(_COL_W * len(columns), _COL_W)
    height = _TOP + max(rows, 1) * _ROW_H + 10
    where: dict[str, tuple[float, float]] = {}
    boxes: list[str] = []
    for col, (heading, nodes) in enumerate(columns):
        left = col * _COL_W + 10
        boxes.append(f'<text class="col-head" x="{left}" y="20">{escape(heading)}</text>')
        for row, node in enumerate(nodes):
            top = _TOP + row * _ROW_H
            where[node.key] = (left, top)
            text = node.label if len(node.label) <= 24 else node.label[:23] + "…"
            klass = "node current" if node.current else "node"
            box = (
                f'<rect class="{klass}" x="{left}" y="{top}" width="{_NODE_W}" '
                f'height="{_NODE_H}" rx="6"/><text class="node-label" x="{left + 10}" '
                f'y="{top + 22}">{escape(text)}</text><title>{escape(node.label)}</title>'
            )
            if node.href:
                boxes.append(f'<a href="{escape(node.href)}" class="node-link">{box}</a>')
            else:
                boxes.append(f"<g>{box}</g>")
    lines = []
    for start, end in edges:
        if start not in where or end not in where:
            continue
        (x1, y1), (x2, y2) = where[start], where[end]
        sx, sy, ex, ey = x1 + _NODE_W, y1 + _NODE_H / 2, x2, y2 + _NODE_H / 2
        mid = (sx + ex) / 2
        lines.append(
            f'<path class="edge" d="M{sx:.0f},{sy:.0f} C{mid:.0f},{sy:.0f} {mid:.0f},{ey:.0f} '
            f'{ex:.0f},{ey:.0f}" marker-end="url(#arrow)"/>'
        )
    return Markup(  # noqa: S704 - every interpolated string is escaped above
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="group" aria-label="Lineage graph: data, runs, versions, deployments" '
        'xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 10 10" '
        'refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" class="arrow"/></marker></defs>'
        + "".join(lines)
        + "".join(boxes)
        + "</svg>"
    )


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    """One span of a trace waterfall, in tree order (a parent before its children).

    Attributes:
        label: The span's name (shortened to fit).
        depth: Nesting level; 0 for a root span.
        start: Start offset from the trace's start, as a fraction of the trace's duration.
        end: End offset, likewise (``end >= start``).
        error: Whether the span failed (drawn in the alert colour).
        href: The in-page anchor of the span's details.
        tooltip: Shown on hover: latency, tokens, cost.
    """

    label: str
    depth: int
    start: float
    end: float
    error: bool
    href: str
    tooltip: str


_WF_WIDTH, _WF_LABEL, _WF_ROW, _WF_INDENT = 960, 260, 24, 14


def waterfall_svg(title: str, rows: Sequence[WaterfallRow]) -> Markup:
    """Draw a trace as a waterfall: one bar per span, placed by its start and end in the trace.

    Labels are indented by depth so nesting reads at a glance; each bar links to the span's
    details further down the page, so the chart works from the keyboard too.
    """
    label = escape(title)
    plot_w = _WF_WIDTH - _WF_LABEL - 10
    height = _WF_ROW * max(len(rows), 1) + 8
    parts = [
        f'<svg class="chart waterfall" viewBox="0 0 {_WF_WIDTH} {height}" role="group" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
    ]
    for index, row in enumerate(rows):
        top = 4 + index * _WF_ROW
        start = min(max(row.start, 0.0), 1.0)
        end = min(max(row.end, start), 1.0)
        x = _WF_LABEL + plot_w * start
        width = max(plot_w * (end - start), 2.0)
        text = row.label if len(row.label) <= 30 else row.label[:29] + "…"
        color = "#c92a2a" if row.error else _PALETTE[row.depth % len(_PALETTE)]
        parts.append(
            f'<a href="{escape(row.href)}" class="span-link"><g class="span-row" '
            f'data-depth="{row.depth}"><title>{escape(row.label)}: {escape(row.tooltip)}</title>'
            f'<text class="span-label" x="{4 + _WF_INDENT * row.depth}" y="{top + 15}">'
            f"{escape(text)}</text>"
            f'<rect class="span-bar" x="{x:.1f}" y="{top + 3}" width="{width:.1f}" '
            f'height="{_WF_ROW - 8}" rx="3" fill="{color}"/></g></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated string is escaped above
