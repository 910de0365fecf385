"""The dashboard's server-drawn SVG: line charts over time and the lineage graph."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.charts import GraphNode, line_chart, lineage_svg

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


def test_a_line_chart_draws_every_point_labelled_and_escaped() -> None:
    svg = line_chart(
        "Drift <share>",
        {"a&b": [(T0, 0.1), (T0 + timedelta(hours=1), 0.6)], "c": [(T0, 0.2)]},
        threshold=0.5,
    )
    assert 'aria-label="Drift &lt;share&gt;"' in svg
    assert svg.count("<circle") == 3
    assert "a&amp;b: 0.6 at 2026-11-30T10:00+00:00" in svg
    assert 'class="threshold"' in svg
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', svg)]
    assert min(ys) == ys[1]  # the largest value is drawn highest


def test_a_chart_without_points_says_so() -> None:
    assert "no judged runs yet" in line_chart("Performance", {})


def test_the_lineage_graph_links_nodes_and_draws_known_edges_only() -> None:
    svg = lineage_svg(
        [
            ("Data", [GraphNode("d", "adult/train")]),
            ("Runs", [GraphNode("j", "train")]),
            ("Versions", [GraphNode("m", "income v2", "/p/acme/models/income/versions/2", True)]),
        ],
        [("d", "j"), ("j", "m"), ("m", "nowhere")],
    )
    assert svg.count('class="edge"') == 2
    assert '<a href="/p/acme/models/income/versions/2"' in svg
    assert 'class="node current"' in svg
    assert "<script" not in svg
