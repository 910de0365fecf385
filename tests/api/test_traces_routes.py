"""Reading traces over REST: every filter narrows the list, pages follow, one trace is a tree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from governance.roles import Role
from lineage.models import Deployment
from lineage.projects import Project
from tests.conftest import Issued
from tests.monitors.traces.conftest import make_llm_deployment, otlp_span, store_spans

URL = "/api/v1/projects/acme/traces"


@pytest.fixture
def reader(make_principal: Callable[..., Issued]) -> Issued:
    return make_principal(role=Role.VIEWER)


@pytest.fixture
def seeded(engine: Engine, make_project: Callable[[str], Project]) -> tuple[Deployment, Deployment]:
    project = make_project("acme")
    bot = make_llm_deployment(engine, project, "support-bot")
    search = make_llm_deployment(engine, project, "search-bot")
    messages = '[{"role": "user", "parts": [{"type": "text", "content": "refund my order"}]}]'
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
                    "gen_ai.input.messages": messages,
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
    return bot, search


def _ids(client: TestClient, reader: Issued, **params: Any) -> list[str]:
    answer = client.get(URL, params=params, headers=reader.headers)
    assert answer.status_code == 200, answer.text
    return [trace["trace_id"][0] for trace in answer.json()["traces"]]


def test_every_filter_narrows_the_list(
    client: TestClient, seeded: tuple[Deployment, Deployment], reader: Issued
) -> None:
    bot, search = seeded
    assert _ids(client, reader) == ["b", "a"]
    assert _ids(client, reader, deployment_id=str(bot.id)) == ["a"]
    assert _ids(client, reader, deployment_id=str(search.id)) == ["b"]
    assert _ids(client, reader, status="error") == ["b"]
    assert _ids(client, reader, model="gpt-4o-mini") == ["a"]
    assert _ids(client, reader, prompt_name="support", prompt_version="3") == ["a"]
    assert _ids(client, reader, prompt_version="4") == []
    assert _ids(client, reader, min_cost_nano_usd=1_000_000) == ["a"]
    assert _ids(client, reader, max_cost_nano_usd=1_000_000) == []  # b: pricing missing
    assert _ids(client, reader, min_duration_ms=100) == ["a"]
    assert _ids(client, reader, max_duration_ms=100) == ["b"]
    assert _ids(client, reader, q="REFUND") == ["a"]
    assert _ids(client, reader, q="100%") == []
    assert _ids(client, reader, since="2025-12-06T05:46:44Z") == ["b"]
    assert _ids(client, reader, until="2025-12-06T05:46:44Z") == ["a"]


def test_pages_follow_the_cursor(
    client: TestClient, seeded: tuple[Deployment, Deployment], reader: Issued
) -> None:
    first = client.get(URL, params={"limit": 1}, headers=reader.headers).json()
    assert [t["trace_id"][0] for t in first["traces"]] == ["b"]
    second = client.get(
        URL, params={"limit": 1, "cursor": first["next_cursor"]}, headers=reader.headers
    ).json()
    assert [t["trace_id"][0] for t in second["traces"]] == ["a"]
    assert second["next_cursor"] is None
    bad = client.get(URL, params={"cursor": "nonsense"}, headers=reader.headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


def test_one_trace_is_its_span_tree(
    client: TestClient, seeded: tuple[Deployment, Deployment], reader: Issued
) -> None:
    answer = client.get(f"{URL}/{'a' * 32}", headers=reader.headers)
    assert answer.status_code == 200, answer.text
    tree = answer.json()
    assert tree["trace"]["span_count"] == 3
    assert tree["trace"]["cost_nano_usd"] == 2_000_000
    (root,) = tree["spans"]
    assert root["span_id"] == "1" * 16
    (llm,) = root["children"]
    assert llm["request_model"] == "gpt-4o-mini"
    assert (llm["cost_nano_usd"], llm["cost_source"]) == (2_000_000, "ingested")
    assert llm["content"]["input_messages"] == [{"role": "user", "content": "refund my order"}]
    assert [child["operation"] for child in llm["children"]] == ["execute_tool"]
    assert client.get(f"{URL}/{'c' * 32}", headers=reader.headers).status_code == 404
    assert client.get(f"{URL}/ABC", headers=reader.headers).status_code == 422


def test_traces_of_another_project_are_not_found(
    client: TestClient,
    seeded: tuple[Deployment, Deployment],
    make_principal: Callable[..., Issued],
) -> None:
    outsider = make_principal(role=Role.VIEWER, project="other")
    assert client.get(URL, headers=outsider.headers).status_code == 404
    answer = client.get("/api/v1/projects/other/traces", headers=outsider.headers)
    assert answer.json()["traces"] == []
