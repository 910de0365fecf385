"""Evaluation over HTTP, end to end: prompt versions, runs on the worker, comparison, gates.

The LLM is a stand-in (``api.demo.llm_stand_in``): an OpenAI-compatible server on 127.0.0.1
with canned answers and usage, a fake for the hosted model that cannot run here. Everything
else is real: the store, MLflow's prompt registry, the worker's job, the trace ingest, the
approval rule and the audit chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.demo.llm_stand_in import StandInLLM
from api.settings import Settings
from api.worker_process import build_worker
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.models import Deployment
from lineage.store import session_scope
from monitors.llm.calls import read_calls
from monitors.traces.models import TraceSpan
from tests.api.evaluation_seed import ANSWERS, QUESTIONS, V1, V2
from tests.conftest import Issued

BASE = "/api/v1/projects/acme"


@pytest.fixture
def stand_in() -> Iterator[StandInLLM]:
    with StandInLLM(answers=ANSWERS) as server:
        yield server


class Team:
    """The people of the story; each call goes to the project's API."""

    def __init__(self, client: TestClient, make_principal: Callable[..., Issued]) -> None:
        self.client = client
        self.author = make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER], name="dana")
        self.approver = make_principal(role=Role.APPROVER, name="avery")
        self.admin = make_principal(role=Role.ADMIN, name="ada")

    def call(self, method: str, path: str, who: Issued, **kwargs: Any) -> Any:
        url = path if path.startswith("/api/v1/audit") else f"{BASE}{path}"
        return self.client.request(method, url, headers=who.headers, **kwargs)

    def ok(self, method: str, path: str, who: Issued, **kwargs: Any) -> Any:
        answer = self.call(method, path, who, **kwargs)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


@pytest.fixture
def team(client: TestClient, make_principal: Callable[..., Issued]) -> Team:
    return Team(client, make_principal)


def _setup(team: Team, stand_in: StandInLLM, *, allow: bool = True, key_env: str = "") -> None:
    """Allow the stand-in's address, register v1 and v2, bind a deployment, load a dataset."""
    if allow:
        team.ok("POST", "/outbound-allowlist", team.admin, json={"target": "127.0.0.1"})
    team.ok("POST", "/prompts/support/versions", team.author, json=V1)
    team.ok("POST", "/prompts/support/versions", team.author, json=V2)
    team.ok(
        "POST",
        "/llm-deployments",
        team.admin,
        json={
            "name": "support-bot",
            "prompt": "support",
            "base_url": stand_in.base_url,
            "model": "gpt-4o-mini",
        }
        | ({"api_key_env": key_env} if key_env else {}),
    )
    team.ok("POST", "/evaluation/datasets", team.author, json={"name": "faq"})
    team.ok(
        "POST",
        "/evaluation/datasets/faq/versions",
        team.author,
        json={
            "records": [
                {"inputs": {"question": q}, "expected_response": a, "facts": [a]}
                for q, a in QUESTIONS
            ]
        },
    )


def _evaluate(
    team: Team, settings: Settings, engine: Engine, version: str, scorers: list[dict[str, Any]]
) -> dict[str, Any]:
    run = team.ok(
        "POST",
        "/evaluation/runs",
        team.author,
        json={
            "dataset": "faq",
            "prompt": "support",
            "prompt_version": version,
            "llm_deployment": "support-bot",
            "scorers": scorers,
        },
    )
    assert run["state"] == "queued"
    assert build_worker(settings, engine).run_once()
    done: dict[str, Any] = team.ok("GET", f"/evaluation/runs/{run['id']}", team.author)
    return done


OFFLINE: list[dict[str, Any]] = [
    {"type": "exact_match"},
    {"type": "contains"},
    {"type": "token_f1"},
    {"type": "length", "name": "detail", "min_chars": 10},
]


def _approve(team: Team, version: str) -> str:
    asked = team.ok(
        "POST",
        f"/prompts/support/versions/{version}/promotion-requests",
        team.author,
        json={"reason": "better answers"},
    )
    approval_id: str = asked["approval_id"]
    own = team.call(
        "POST", f"/approvals/{approval_id}/approve", team.author, json={"reason": "mine"}
    )
    assert own.status_code == 403, own.text
    assert "another approver must decide" in own.json()["detail"]
    team.ok("POST", f"/approvals/{approval_id}/approve", team.approver, json={"reason": "read it"})
    return approval_id


def _promote(team: Team, version: str) -> Any:
    return team.call(
        "POST", "/llm-deployments/support-bot/promote", team.author, json={"version": version}
    )


@pytest.mark.slow
def test_v2_is_evaluated_compared_approved_and_gated_to_production(
    team: Team, stand_in: StandInLLM, settings: Settings, engine: Engine
) -> None:
    _setup(team, stand_in)
    _approve(team, "1")
    assert _promote(team, "1").status_code == 200

    first = _evaluate(team, settings, engine, "1", OFFLINE)
    second = _evaluate(team, settings, engine, "2", OFFLINE)
    assert (first["state"], second["state"]) == ("succeeded", "succeeded")
    assert first["dataset_version"] == 1
    assert first["figures"]["scorers"]["exact_match"]["mean"] == pytest.approx(1 / 3)
    assert second["figures"]["scorers"]["exact_match"]["mean"] == 1.0
    assert second["figures"]["calls"]["input_tokens"] > 0

    judged_v2 = team.ok("GET", "/evaluation/runs?prompt=support&prompt_version=2", team.author)
    assert [r["id"] for r in judged_v2] == [second["id"]]
    results = team.ok("GET", f"/evaluation/runs/{second['id']}/results", team.author)
    assert [r["response"] for r in results] == ["Paris", "4", "Pacific"]
    with session_scope(engine) as session:
        spans = session.exec(
            select(TraceSpan).where(col(TraceSpan.trace_id).in_([r["trace_id"] for r in results]))
        ).all()
        assert {(s.prompt_name, s.prompt_version) for s in spans} == {("support", "2")}
        assert all(s.attributes.get("warden.evaluation.run_id") == second["id"] for s in spans)
        # v1 is live in the slot, yet its six evaluation calls are not the slot's traffic.
        slot = session.exec(select(Deployment).where(Deployment.name == "support-bot")).one()
        assert len(spans) == 3
        assert read_calls(session=session, deployment=slot, start=None, end=None).empty

    comparison = team.ok(
        "GET", f"/evaluation/comparison?runs={first['id']},{second['id']}", team.author
    )
    assert [d["position"] for d in comparison["differing"]] == [0, 2]
    assert comparison["differing"][0]["responses"] == ["It is Paris, on the Seine.", "Paris"]
    assert comparison["differing"][0]["passed"] == [
        {"detail": True, "exact_match": False, "token_f1": False},
        {"detail": False, "exact_match": True, "token_f1": True},
    ]

    # v2 answers tersely: a gate on the "detail" scorer's drop against live v1 blocks it, and
    # says why with both runs' figures.
    gates: list[dict[str, Any]] = [
        {"type": "eval_min", "dataset": "faq", "scorer": "token_f1", "min": 0.9},
        {"type": "eval_max_drop", "dataset": "faq", "scorer": "detail", "max_drop": 0.1},
    ]
    policy = team.ok(
        "POST",
        "/policies",
        team.admin,
        json={"name": "prompt-quality", "document": {"gates": gates}},
    )
    _approve(team, "2")
    blocked = _promote(team, "2")
    assert blocked.status_code == 403, blocked.text
    detail = blocked.json()["detail"]
    assert "eval_min" not in detail  # token_f1 1.0 reaches 0.9: that gate passed
    assert "'prompt-quality v1 eval_max_drop'" in detail
    assert "detail on faq v1: version 2 mean 0.0000" in detail
    assert "vs live version 1 mean 0.6667" in detail
    assert "it drops 0.6667, more than the 0.1 allowed" in detail
    assert second["id"] in detail
    assert first["id"] in detail
    assert team.ok("GET", "/prompts/support@production", team.author)["version"] == "1"

    team.ok(
        "POST",
        f"/policies/{policy['id']}/versions",
        team.admin,
        json={
            "document": {
                "gates": [
                    gates[0],
                    {"type": "eval_max_drop", "dataset": "faq", "scorer": "token_f1"},
                ]
            }
        },
    )
    promoted = _promote(team, "2")
    assert promoted.status_code == 200, promoted.text
    live = team.client.get(f"{BASE}/prompts/support@production", headers=team.author.headers)
    assert live.json()["version"] == "2"

    verified = team.ok("GET", "/api/v1/audit/verify", team.admin)
    assert verified["intact"] is True
    assert verified["first_broken_seq"] is None
    with session_scope(engine) as session:
        actions = set(session.exec(select(AuditEntry.action)).all())
    assert {
        "approval.request",
        "approval.approve",
        "prompt.promote",
        "eval_run.request",
        "eval_run.succeeded",
    } <= actions


@pytest.mark.slow
def test_a_judge_outage_makes_the_run_partial_and_keeps_the_offline_scores(
    team: Team,
    stand_in: StandInLLM,
    settings: Settings,
    engine: Engine,
    make_principal: Callable[..., Issued],
) -> None:
    _setup(team, stand_in)
    team.ok(
        "POST",
        "/llm/prices",
        team.admin,
        json={
            "provider": "openai",
            "model_pattern": "gpt-4o-mini",
            "input_nano_usd_per_mtok": 150_000_000,
            "output_nano_usd_per_mtok": 600_000_000,
            "valid_from": "2026-01-01T00:00:00Z",
        },
    )
    with StandInLLM(outage=503) as judge:
        run = _evaluate(
            team,
            settings,
            engine,
            "2",
            [
                *OFFLINE,
                {
                    "type": "llm_judge",
                    "name": "helpful",
                    "endpoint": {"base_url": judge.base_url, "model": "judge-1"},
                },
            ],
        )
        assert len(judge.requests) == 3  # asked, then given up on after three in a row
    assert run["state"] == "partial"
    assert "3 call or score error(s)" in run["error"]
    scorers = run["figures"]["scorers"]
    assert scorers["helpful"]["errors"] == 3
    assert scorers["helpful"]["mean"] is None
    assert scorers["detail"]["errors"] == 0
    assert scorers["exact_match"] == {
        "mean": 1.0,
        "low": 1.0,
        "high": 1.0,
        "pass_rate": 1.0,
        "scored": 3,
        "skipped": 0,
        "errors": 0,
    }
    calls = run["figures"]["calls"]
    # $0.15 and $0.60 per million tokens: 150 nano-dollars an input token, 600 an output one.
    assert calls["cost_nano_usd"] == 150 * calls["input_tokens"] + 600 * calls["output_tokens"]
    # Nothing is live in the slot, and every call is traced all the same: as the run's.
    results = team.ok("GET", f"/evaluation/runs/{run['id']}/results", team.author)
    traces = team.ok("GET", f"/traces?evaluation_run_id={run['id']}", team.author)["traces"]
    assert sorted(t["trace_id"] for t in traces) == sorted(r["trace_id"] for r in results)
    assert {(t["evaluation_run_id"], t["deployment_id"]) for t in traces} == {(run["id"], None)}
    assert sum(t["cost_nano_usd"] for t in traces) == calls["cost_nano_usd"]
    (span,) = team.ok("GET", f"/traces/{results[0]['trace_id']}", team.author)["spans"]
    assert (span["prompt_name"], span["prompt_version"]) == ("support", "2")
    assert span["content"]["output_messages"]
    outsider = make_principal(role=Role.ADMIN, project="other")
    for path in (f"/traces?evaluation_run_id={run['id']}", f"/traces/{results[0]['trace_id']}"):
        assert team.call("GET", path, outsider).status_code == 404  # not even its name
    first = results[0]
    assert first["scores"]["helpful"]["status"] == "error"
    assert "503" in first["scores"]["helpful"]["reason"]
    assert first["scores"]["token_f1"]["status"] == "scored"
    with session_scope(engine) as session:
        outcome = session.exec(
            select(AuditEntry).where(AuditEntry.action == "eval_run.partial")
        ).one()
        assert outcome.detail_object()["score_errors"] == {"helpful": 3}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"scorers": [{"type": "regex", "pattern": "("}]}, 422, "scorers[0].regex.pattern"),
        (
            {"scorers": [{"type": "llm_judge", "endpoint": {"base_url": "ftp://x", "model": "m"}}]},
            422,
            "scorers[0].llm_judge.endpoint.base_url",
        ),
        ({"dataset": "nope"}, 404, None),
        ({"dataset_version": 9}, 404, None),
        ({"prompt_version": "7"}, 404, None),
        ({"llm_deployment": "nope"}, 404, None),
        ({"overrides": {"temperature": 5}}, 422, None),
        # PostgreSQL refuses NUL in text and 32-bit overflows: both were a 500 there.
        ({"prompt": "support\x00"}, 422, "prompt"),
        ({"llm_deployment": "\x00"}, 422, "llm_deployment"),
        ({"dataset_version": 2**31}, 422, "dataset_version"),
    ],
)
def test_a_bad_run_request_is_refused_and_leaves_nothing(
    team: Team,
    stand_in: StandInLLM,
    engine: Engine,
    change: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    _setup(team, stand_in)
    body = {
        "dataset": "faq",
        "prompt": "support",
        "prompt_version": "1",
        "llm_deployment": "support-bot",
        "scorers": OFFLINE,
    } | change
    answer = team.call("POST", "/evaluation/runs", team.author, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert answer.json()["field"] == field
    assert team.ok("GET", "/evaluation/runs", team.author) == []
    version = team.ok("GET", "/evaluation/datasets/faq/versions/1", team.author)
    assert version["frozen_at"] is None


@pytest.mark.slow
def test_a_run_fails_when_its_endpoint_is_refused_or_its_key_is_missing(
    team: Team,
    stand_in: StandInLLM,
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _setup(team, stand_in, allow=False, key_env="WARDEN_TEST_UNSET_LLM_KEY")
    run = _evaluate(team, settings, engine, "1", OFFLINE)
    assert run["state"] == "failed"
    assert "could not start" in run["error"]
    assert "WARDEN_TEST_UNSET_LLM_KEY" in run["error"]
    assert stand_in.requests == []
    monkeypatch.setenv("WARDEN_TEST_LLM_KEY", "sk-test-stand-in-needs-none")
    team.ok(
        "PATCH",
        "/llm-deployments/support-bot",
        team.admin,
        json={"api_key_env": "WARDEN_TEST_LLM_KEY"},
    )
    refused = _evaluate(team, settings, engine, "1", OFFLINE)
    assert refused["state"] == "failed"
    assert refused["error"] == "no call to the candidate answered; see the results"
    results = team.ok("GET", f"/evaluation/runs/{refused['id']}/results", team.author)
    assert all("loopback" in r["error"] for r in results), results[0]["error"]
    assert stand_in.requests == []


@pytest.mark.slow
def test_the_lineage_of_a_prompt_version_shows_its_dataset_run_and_deployment(
    team: Team, stand_in: StandInLLM, settings: Settings, engine: Engine
) -> None:
    """dataset version → evaluation run → prompt version → deployment, over the Marquez GET."""
    _setup(team, stand_in)
    _approve(team, "1")
    assert _promote(team, "1").status_code == 200
    run = _evaluate(team, settings, engine, "1", OFFLINE)
    assert run["state"] == "succeeded"

    graph = team.client.get(
        "/api/v1/lineage",
        params={"nodeId": "model:support:1", "depth": 2, "project": "acme"},
        headers=team.author.headers,
    )
    assert graph.status_code == 200, graph.text
    nodes = {node["id"]: node for node in graph.json()["graph"]}
    assert set(nodes) == {
        "dataset:warden:evaluation/faq",
        "job:warden:evaluation/support",
        "model:support:1",
        "deployment:production:support-bot",
    }
    prompt = nodes["model:support:1"]
    assert {e["origin"] for e in prompt["inEdges"]} == {"job:warden:evaluation/support"}
    assert {e["destination"] for e in prompt["outEdges"]} == {"deployment:production:support-bot"}
    assert nodes["job:warden:evaluation/support"]["inEdges"] == [
        {"origin": "dataset:warden:evaluation/faq", "destination": "job:warden:evaluation/support"}
    ]
    assert prompt["data"]["evaluatedBy"] == [
        {
            "runId": run["id"],
            "job": "job:warden:evaluation/support",
            "state": "COMPLETE",
            "datasetVersions": [{"dataset": "dataset:warden:evaluation/faq", "version": "1"}],
        }
    ]
    # v2 was never judged nor served: its graph is the version alone.
    alone = team.client.get(
        "/api/v1/lineage",
        params={"nodeId": "model:support:2", "depth": 2, "project": "acme"},
        headers=team.author.headers,
    ).json()["graph"]
    assert [(n["id"], n["inEdges"], n["outEdges"]) for n in alone] == [("model:support:2", [], [])]
    # Provenance of the version names the run that judged it and the data read, apart from
    # what made it; the impact of the dataset version names the version it judged.
    provenance = team.ok("GET", "/models/support/versions/1/provenance", team.author)
    assert (provenance["runs"], provenance["dataset_versions"]) == ([], [])
    assert [r["run_id"] for r in provenance["evaluations"]] == [run["id"]]
    assert [
        (v["namespace"], v["name"], v["version"]) for v in provenance["evaluation_dataset_versions"]
    ] == [("warden", "evaluation/faq", "1")]
    unjudged = team.ok("GET", "/models/support/versions/2/provenance", team.author)
    assert unjudged["evaluations"] == []
    impact = team.ok(
        "GET",
        "/datasets/impact?namespace=warden&name=evaluation/faq&version=1",
        team.author,
    )
    assert [(m["name"], m["version"]) for m in impact["judged_model_versions"]] == [
        ("support", "1")
    ]
    assert [r["run_id"] for r in impact["runs"]] == [run["id"]]
    assert impact["model_versions"] == []
    # The same run in the OpenLineage catalog: it read dataset version 1 and completed.
    detail = team.ok("GET", f"/runs/{run['id']}", team.author)
    assert (detail["run"]["job_name"], detail["run"]["state"]) == ("evaluation/support", "COMPLETE")
    assert [(i["namespace"], i["name"], i["version"]) for i in detail["inputs"]] == [
        ("warden", "evaluation/faq", "1")
    ]
