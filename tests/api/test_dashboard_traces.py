"""The trace pages over HTTP: filters narrow the list, a trace is a nested waterfall with
"pricing missing" where no price is known, charts per deployment, and other projects stay hidden.

Spans are stored through the real ingest service on a real migrated store.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.dashboard.trace_pages import usd
from api.headers import DASHBOARD_CSP
from governance.actors import Actor
from governance.identity import create_person
from governance.roles import Role, grant_role
from lineage.models import Deployment
from lineage.projects import Project
from lineage.store import session_scope
from tests.api.test_dashboard import HTML, PASSWORD, new_client, sign_in
from tests.monitors.traces.conftest import make_llm_deployment, otlp_span, store_spans

MESSAGES = '[{"role": "user", "parts": [{"type": "text", "content": "refund my order"}]}]'


def seed_traces(engine: Engine, bot: Deployment, search: Deployment) -> None:
    """Trace ``a`` (three nested spans, one priced, with messages) on ``bot``; trace ``b`` (one
    failed, unpriced span) on ``search``."""
    store_spans(
        engine,
        bot,
        [
            otlp_span("a", "1", None, 0, 900),
            otlp_span(
                "a",
                "2",
                "1",
                100,
                500,
                **{
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.cost": 0.002,
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 30,
                    "gen_ai.input.messages": MESSAGES,
                    "warden.prompt.name": "support",
                    "warden.prompt.version": "3",
                },
            ),
            otlp_span("a", "3", "2", 200, 100, **{"gen_ai.operation.name": "execute_tool"}),
        ],
    )
    store_spans(
        engine,
        search,
        [
            otlp_span(
                "b",
                "4",
                None,
                5_000,
                40,
                status="error",
                **{"gen_ai.request.model": "claude-3-5-haiku", "gen_ai.usage.input_tokens": 7},
            )
        ],
    )


@pytest.fixture
def acme(engine: Engine, make_project: Callable[[str], Project]) -> tuple[Deployment, Deployment]:
    project = make_project("acme")
    other = make_project("other")
    with session_scope(engine) as session:
        vic = create_person(session=session, actor=Actor.system(), name="vic", password=PASSWORD)
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            principal_id=vic.id,
            role=Role.VIEWER,
        )
    bot = make_llm_deployment(engine, project, "support-bot")
    search = make_llm_deployment(engine, project, "search-bot")
    seed_traces(engine, bot, search)
    store_spans(
        engine, make_llm_deployment(engine, other, "secret-bot"), [otlp_span("c", "5", None, 0, 5)]
    )
    return bot, search


__all__ = ["new_client", "seed_traces"]  # new_client is a fixture this module uses


@pytest.fixture
def vic(new_client: Callable[..., TestClient]) -> TestClient:
    return sign_in(new_client(), "vic")


def _listed(client: TestClient, **params: str) -> list[str]:
    page = client.get("/p/acme/traces", params=params, headers=HTML)
    assert page.status_code == 200, page.text
    return [t[0] for t in re.findall(r'data-trace="([0-9a-f]{32})"', page.text)]


def test_the_list_filters_like_the_api_and_ignores_empty_fields(
    acme: tuple[Deployment, Deployment], vic: TestClient
) -> None:
    bot, search = acme
    blank = {name: "" for name in ("deployment_id", "since", "status", "model", "q")}
    assert _listed(vic, **blank) == ["b", "a"]
    assert _listed(vic, deployment_id=str(bot.id)) == ["a"]
    assert _listed(vic, deployment_id=str(search.id)) == ["b"]
    assert _listed(vic, status="error") == ["b"]
    assert _listed(vic, model="gpt-4o-mini") == ["a"]
    assert _listed(vic, prompt_name="support", prompt_version="3") == ["a"]
    assert _listed(vic, prompt_version="4") == []
    assert _listed(vic, min_cost_usd="0.001") == ["a"]
    assert _listed(vic, max_cost_usd="0.001") == []  # b is "pricing missing", not $0
    assert _listed(vic, min_duration_ms="100") == ["a"]
    assert _listed(vic, max_duration_ms="100") == ["b"]
    assert _listed(vic, q="REFUND") == ["a"]
    assert _listed(vic, since="2025-12-06T05:46:44") == ["b"]  # a form's time: read as UTC
    assert _listed(vic, until="2025-12-06T05:46:44Z") == ["a"]
    page = vic.get("/p/acme/traces", headers=HTML).text
    assert 'href="/p/acme/traces" aria-current="page"' in page
    assert "$0.002000" in page
    assert "pricing missing" in page
    assert "$0.000000" not in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_cost_usd", "lots"),
        ("max_cost_usd", "-1"),
        ("min_duration_ms", "nan"),
        ("since", "yesterday"),
        ("deployment_id", "nope"),
        ("status", "maybe"),
        ("q", "x" * 201),
    ],
)
def test_a_bad_filter_is_a_422_naming_its_field(
    acme: tuple[Deployment, Deployment], vic: TestClient, field: str, value: str
) -> None:
    answer = vic.get("/p/acme/traces", params={field: value})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def test_a_trace_is_a_nested_waterfall_with_tokens_cost_and_messages(
    acme: tuple[Deployment, Deployment], vic: TestClient
) -> None:
    page = vic.get(f"/p/acme/traces/{'a' * 32}", headers=HTML)
    assert page.status_code == 200, page.text
    rows = re.findall(r'data-depth="(\d)" data-span="([0-9a-f]{16})"', page.text)
    assert [(int(depth), span[0]) for depth, span in rows] == [(0, "1"), (1, "2"), (2, "3")]
    bars = [float(x) for x in re.findall(r'class="span-bar" x="([\d.]+)"', page.text)]
    widths = [
        float(w)
        for w in re.findall(r'class="span-bar" x="[\d.]+" y="\d+" width="([\d.]+)"', page.text)
    ]
    assert bars[0] < bars[1] < bars[2]  # each starts later, relative to the trace's start
    assert widths[0] > widths[1] > widths[2]  # 900, 500 and 100 ms
    assert widths[1] / widths[0] == pytest.approx(500 / 900, rel=0.01)
    cells = re.findall(r'<tr id="span-(.)[^"]*".*?</tr>', page.text, flags=re.S)
    assert cells == ["1", "2", "3"]
    spans = dict(re.findall(r'<tr id="span-(.)[^"]*"(.*?)</tr>', page.text, flags=re.S))
    assert "pricing missing" in spans["1"]
    assert "pricing missing" in spans["3"]
    assert "$0.002000" in spans["2"]
    assert "12 in / 30 out" in spans["2"]
    assert "$0.000000" not in page.text
    assert "refund my order" in page.text


def test_the_trace_pages_need_nothing_the_policy_forbids(
    acme: tuple[Deployment, Deployment], vic: TestClient
) -> None:
    """The seeded crawl has no traces, so check these pages here as it does."""
    bot, _ = acme
    for path in (
        "/p/acme/traces",
        f"/p/acme/traces/{'a' * 32}",
        f"/p/acme/traces/deployments/{bot.id}",
    ):
        page = vic.get(path, headers=HTML)
        assert page.headers["content-security-policy"] == DASHBOARD_CSP, path
        for forbidden in ("<script", "<style", " style=", "javascript:", 'src="http'):
            assert forbidden not in page.text, (path, forbidden)


def test_another_projects_trace_is_not_found(
    acme: tuple[Deployment, Deployment], vic: TestClient
) -> None:
    assert vic.get(f"/p/acme/traces/{'c' * 32}", headers=HTML).status_code == 404
    assert vic.get(f"/p/acme/traces/{'c' * 32}").status_code == 404
    assert "c" * 32 not in vic.get("/p/acme/traces", headers=HTML).text
    assert vic.get("/p/other/traces", headers=HTML).status_code in (403, 404)
    assert vic.get("/p/acme/traces/NOT-HEX").status_code == 422


def test_the_deployment_charts_show_volume_latency_tokens_and_cost(
    acme: tuple[Deployment, Deployment], vic: TestClient
) -> None:
    bot, search = acme
    page = vic.get(f"/p/acme/traces/deployments/{bot.id}", headers=HTML)
    assert page.status_code == 200, page.text
    assert page.text.count('<svg class="chart"') == 4
    assert "$0.002000" in page.text
    unpriced = vic.get(f"/p/acme/traces/deployments/{search.id}", headers=HTML).text
    assert "no priced traces yet." in unpriced
    assert "pricing missing" in unpriced


def test_dollars_are_formatted_from_nano_dollars_and_none_is_pricing_missing() -> None:
    assert usd(2_000_000) == "$0.002000"
    assert usd(0) == "$0.000000"
    assert usd(None) == "pricing missing"
