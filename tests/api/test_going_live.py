"""Nothing goes live around an approval: every way to change what a deployment serves is attacked.

The attack of the security review: a data scientist records an unapproved version as live
(``POST …/deployments``) and the embedded endpoint serves it at once, while ``…/promote`` refuses
the same version. Here every write route of the app (the OpenAPI document's operations and the
dashboard's forms) is either attacked with an unapproved version, or named with the reason it
cannot change a live version; a new write route fails until it is one or the other. Policy
actions (the loop's rollback and redeploy) are attacked too, and the serving endpoint must keep
answering with the approved version after each refusal.
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from api.cli import app as cli
from api.settings import Settings
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.policy_evaluation import RunFindings
from governance.roles import Role
from lineage.deployments import DeploymentCreate, live_deployments, record_deployment
from lineage.models import ModelVersion
from lineage.projects import get_project
from lineage.store import session_scope
from monitors.findings import Finding, Status
from retrain.champions import Promotion
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader
from retrain.evaluation import Evaluation
from retrain.loop import on_findings
from retrain.mlflow_registry import CHALLENGER, CHAMPION, Registry
from retrain.promotion import mark_challenger
from tests.api.going_live import approve_version
from tests.conftest import Issued

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/v1/projects/{project}"
BASE = "/api/v1/projects/acme"
RULE = "rule: no version goes live without an approved promotion request"
SLOT = {"name": "income-api", "environment": "production"}
FEATURES = ["x1", "x2"]

PROMOTE = ("POST", f"{PREFIX}/models/{{name}}/versions/{{version}}/promote")
RECORD = ("POST", f"{PREFIX}/deployments")
ROLLBACK = ("POST", f"{PREFIX}/deployments/{{name}}/rollback")
REDEPLOY = ("POST", f"{PREFIX}/deployments/{{name}}/redeploy")
APPROVE = ("POST", f"{PREFIX}/approvals/{{approval_id}}/approve")
CARRY_OUT = ("POST", f"{PREFIX}/approvals/{{approval_id}}/carry-out")
PROMPT_PROMOTE = ("POST", f"{PREFIX}/llm-deployments/{{name}}/promote")
GOES_LIVE = {PROMOTE, RECORD, ROLLBACK, REDEPLOY, APPROVE, CARRY_OUT, PROMPT_PROMOTE}

# Every other write route, by pattern, with why it cannot put a version live.
CANNOT_GO_LIVE: list[tuple[str, str]] = [
    (r"^/api/v1/projects$", "creates a project"),
    (r"^/api/v1/principals", "people, service accounts and their keys"),
    (r"/grants", "roles"),
    (r"/approvals(/\{approval_id\}/reject)?$", "asks for or rejects a request"),
    (r"/approval-rules", "sets how many approve and who carries out"),
    (r"^/p/\{project\}/approvals/", "the dashboard's form: decide_and_carry_out, as …/approve"),
    (
        r"^/p/\{project\}/prompts/\{name\}/versions/\{version\}/promote$",
        "the dashboard's form: calls …/llm-deployments/{name}/promote's handler (attacked "
        "here); refused unapproved in test_dashboard_prompts",
    ),
    (r"^/(login|logout)$", "dashboard sign-in"),
    (r"^/api/v1/audit/", "audit checkpoints"),
    (r"^/api/v1/lineage$", "OpenLineage: runs, jobs and datasets, never deployments (below)"),
    (r"/models/\{name\}/versions$", "registers a version, which is not live"),
    (r"/prompts/\{name\}/versions$", "registers a prompt version, which is not live"),
    (r"/llm-deployments$", "binds a slot to a prompt and an endpoint; nothing goes live"),
    (r"/llm-deployments/\{name\}$", "changes a binding's endpoint, or removes an idle one"),
    (r"/versions/\{version\}/schema$", "adds a schema a version lacked; puts nothing live"),
    (r"/promotion-requests$", "asks for an approval"),
    (r"/promotion-request$", "the dashboard's form: asks for an approval, as …/promotion-requests"),
    (r"/deployments/\{deployment_id\}/end$", "takes a version out of service, puts none live"),
    (r"/deployments/import$", "imports a closed past interval; overlaps and futures refused"),
    (r"/monitors", "monitors; their findings reach policies, whose actions are attacked below"),
    (r"/policies", "policies; their rollback/redeploy actions are attacked below"),
    (r"/budgets", "LLM spend budgets; a breach acts through the policies' actions (above)"),
    (r"/alert-|/deliveries/|/incidents/|/outbound-allowlist", "alerting"),
    (r"/pipelines|/pipeline-runs/", "trains and registers versions, never deploys them"),
    (r"/deployments/\{name\}/predict$", "serves the live version"),
    (r"/deployments/\{deployment_id\}/(inferences|labels)", "logs inferences and labels"),
    (r"^/v1/traces$", "OTLP spans: inference records of a deployment, never what it serves"),
    (r"/llm/(prices|redaction|retention)", "trace prices, redaction and retention; no version"),
    (r"/baselines", "reference baselines"),
    (r"/reports/", "model cards and reports"),
    (r"/llm/(prices|redaction)", "LLM token prices and redaction rules"),
    (r"^/api/v1/group-mappings", "identity-provider groups to roles, as grants"),
    (r"^/api/v1/sealed-secrets$", "seals a secret and returns it; stores nothing"),
    (r"/budgets", "spend limits; a breach acts through policies, whose actions are attacked below"),
    (r"/evaluation/(datasets|runs)", "evaluation datasets and runs call candidates, serve nothing"),
    (r"^/p/\{project\}/alerts/", "the dashboard's alerting forms, as the alerting routes"),
]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes(client: TestClient) -> set[tuple[str, str]]:
    """Return every write route: the OpenAPI document's and those left out of it."""
    documented = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
        if method.upper() in WRITES
    }
    served = {
        (method, str(route.path))
        for route in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
        if isinstance(route.original_route, APIRoute)
        for method in (route.methods or set()) & WRITES
    }
    assert documented <= served
    return served


def test_every_write_route_either_is_attacked_or_cannot_change_a_live_version(
    client: TestClient,
) -> None:
    routes = _write_routes(client)
    assert routes >= GOES_LIVE
    unclassified = sorted(
        f"{method} {path}"
        for method, path in routes - GOES_LIVE
        if not any(re.search(pattern, path) for pattern, _ in CANNOT_GO_LIVE)
    )
    assert unclassified == [], (
        "say whether these routes can change what a deployment serves: attack them in this "
        "module (GOES_LIVE) or name why they cannot (CANNOT_GO_LIVE)"
    )


def _train(settings: Settings, flip: bool) -> tuple[str, str]:
    """Log a tiny scikit-learn model to the app's MLflow; return its version and artifact hash."""
    registry = Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
    )
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    labels = [1, 1, 0, 0] if flip else [0, 0, 1, 1]
    with registry.training_run(experiment="income") as run:
        version = run.log_sklearn_model(
            LogisticRegression().fit(frame, labels),
            registered_name="income",
            input_example=frame.head(2),
        )
    return version, registry.artifact_hash("income", version)


class World:
    """The project under attack: version 1 approved and live, version 2 registered only."""

    def __init__(self, client: TestClient, engine: Engine, settings: Settings, **people: Issued):
        self.client = client
        self.engine = engine
        self.settings = settings
        self.scientist = people["scientist"]
        self.approver = people["approver"]
        self.admin = people["admin"]

    def post(self, path: str, body: dict[str, Any], who: Issued | None = None) -> Any:
        return self.client.post(f"{BASE}{path}", json=body, headers=(who or self.scientist).headers)

    def serving(self) -> str:
        """Ask the embedded endpoint which version answers."""
        answer = self.post("/deployments/income-api/predict", {"rows": [{"x1": 0.5, "x2": 1.0}]})
        assert answer.status_code == 200, answer.text
        version: str = answer.json()["model_version"]
        return version

    def state(self) -> tuple[list[str], int]:
        """Return what lineage says is live and how many slot changes were recorded."""
        with session_scope(self.engine) as session:
            project = get_project(session=session, name="acme")
            rows = live_deployments(session=session, project_id=project.id)
            live = [session.get(ModelVersion, r.model_version_id) for r in rows]
            changes = len(session.exec(select(Promotion)).all())
            return [f"{v.name}:{v.version}" for v in live if v is not None], changes

    def denied(self, action: str) -> AuditEntry:
        with session_scope(self.engine) as session:
            entry = session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.seq.desc())  # type: ignore[attr-defined]
            ).first()
        assert entry is not None
        assert entry.outcome == "denied"
        return entry

    def legacy_record(self, version: str) -> None:
        """Record a deployment the way the old back door did (no rule), as old data holds it."""
        with session_scope(self.engine) as session:
            project = get_project(session=session, name="acme")
            record_deployment(
                session=session,
                project_id=project.id,
                spec=DeploymentCreate(**SLOT, model_name="income", model_version=version),
            )


@pytest.fixture
def world(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_principal: Callable[..., Issued],
) -> World:
    people = {
        "scientist": make_principal(role=Role.DATA_SCIENTIST, project="acme"),
        "approver": make_principal(role=Role.APPROVER, project="acme"),
        "admin": make_principal(role=Role.ADMIN, project="acme"),
    }
    world = World(client, engine, settings, **people)
    for flip in (False, True):
        version, sha = _train(settings, flip)
        registered = world.post(
            "/models/income/versions",
            {
                "version": version,
                "artifact_uri": f"models:/income/{version}",
                "artifact_sha256": sha,
                "feature_schema": {"x1": "float", "x2": "float"},
            },
        )
        assert registered.status_code == 201, registered.text
    approve_version(
        client,
        project="acme",
        name="income",
        version="1",
        requester=world.scientist,
        approver=world.approver,
    )
    promoted = world.post(
        "/models/income/versions/1/promote",
        {"deployment": "income-api", "environment": "production"},
    )
    assert promoted.status_code == 200, promoted.text
    assert world.serving() == "1"
    return world


def _refused(response: Any, doing: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert f"{doing} 'income' version 2" in detail
    assert RULE in detail


@pytest.mark.slow
def test_no_route_or_policy_action_puts_an_unapproved_version_live(world: World) -> None:
    live = (["income:1"], 1)
    assert world.state() == live

    # promote: refused, audited, nothing changed, version 1 still answers.
    promote = world.post(
        "/models/income/versions/2/promote",
        {"deployment": "income-api", "environment": "production"},
    )
    _refused(promote, "promoting")
    assert world.denied("model.promote").target == "model:income/2"
    assert (world.state(), world.serving()) == (live, "1")

    # Recording a deployment (the review's attack): refused the same way.
    record = world.post("/deployments", {**SLOT, "model_name": "income", "model_version": "2"})
    _refused(record, "recording a deployment of")
    assert world.denied("deployment.record").target == "model:income/2"
    assert (world.state(), world.serving()) == (live, "1")

    # Rollback to a version that once went live around the rule (data from before it held):
    # the approved version 1 replaced it, and rolling back must not bring it back.
    world.legacy_record("2")
    assert world.serving() == "2"
    again = world.post(
        "/models/income/versions/1/promote",
        {"deployment": "income-api", "environment": "production"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["previous_version"] == "2"
    live = (["income:1"], 2)
    assert (world.state(), world.serving()) == (live, "1")
    rollback = world.post("/deployments/income-api/rollback", {"environment": "production"})
    _refused(rollback, "rolling back to")
    assert world.denied("model.rollback").target == "deployment:production:income-api"
    assert (world.state(), world.serving()) == (live, "1")

    # An approved rollback request, carried out by its requester or at once on approval (the
    # API's and the dashboard's approve): refused by the same rule, recorded on the request.
    asked = world.post(
        "/approvals",
        {
            "action": "rollback",
            "target_kind": "deployment",
            "target_id": "income-api/production",
            "reason": "undo",
        },
    )
    assert asked.status_code == 201, asked.text
    approved = world.post(
        f"/approvals/{asked.json()['id']}/approve", {"reason": "ok"}, world.approver
    )
    assert approved.json()["outcome"] is None  # by_requester: the approval alone does nothing
    carried = world.post(f"/approvals/{asked.json()['id']}/carry-out", {})
    _refused(carried, "rolling back to")
    failed = world.client.get(
        f"{BASE}/approvals/{asked.json()['id']}", headers=world.scientist.headers
    ).json()
    assert (failed["outcome"]["outcome"], failed["carried_out_at"]) == ("failed", None)
    assert (world.state(), world.serving()) == (live, "1")
    put = world.client.put(
        f"{BASE}/approval-rules/rollback",
        json={"carry_out": "on_approval"},
        headers=world.admin.headers,
    )
    assert put.status_code == 200, put.text
    opened = world.post(
        "/approvals",
        {
            "action": "rollback",
            "target_kind": "deployment",
            "target_id": "income-api/production",
            "reason": "undo again",
        },
    )
    assert opened.status_code == 201, opened.text
    decided = world.post(
        f"/approvals/{opened.json()['id']}/approve", {"reason": "ok"}, world.approver
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"  # the approval stands; the rollback failed
    assert decided.json()["outcome"]["outcome"] == "failed"
    assert RULE in decided.json()["outcome"]["error"]
    assert (world.state(), world.serving()) == (live, "1")

    # A prompt version goes live by the same rule: an LLM deployment is a deployment.
    prompt = world.post(
        "/prompts/greeting/versions",
        {
            "template": "Greet {{name}}",
            "model": {"provider": "openai", "name": "m"},
            "commit_message": "first",
        },
    )
    assert prompt.status_code == 201, prompt.text
    bound = world.post(
        "/llm-deployments",
        {
            "name": "greeter",
            "prompt": "greeting",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
        },
    )
    assert bound.status_code == 201, bound.text
    prompted = world.post("/llm-deployments/greeter/promote", {"version": "1"})
    assert prompted.status_code == 403, prompted.text
    assert "promoting 'greeting' version 1" in prompted.json()["detail"]
    assert RULE in prompted.json()["detail"]
    assert world.denied("prompt.promote").target == "prompt:greeting/1"
    assert (world.state(), world.serving()) == (live, "1")

    attacked = {PROMOTE, RECORD, ROLLBACK, REDEPLOY, APPROVE, CARRY_OUT, PROMPT_PROMOTE}
    assert attacked == GOES_LIVE

    # Policy actions: the loop performs rollbacks and redeploys through the same rule.
    policy = world.post(
        "/policies",
        {
            "name": "undo",
            "source": (
                "rules:\n"
                "  - name: undo\n"
                "    scope: {deployment: income-api}\n"
                "    when: {monitor: drift, metric: drift_share, op: '>=', threshold: 0.3}\n"
                "    actions:\n"
                "      - {type: rollback, mode: perform}\n"
                "      - {type: redeploy, mode: perform}\n"
            ),
        },
        who=world.admin,
    )
    assert policy.status_code == 201, policy.text
    registry = Registry(
        tracking_uri=world.settings.resolved_mlflow_uri(),
        artifact_root=world.settings.data_dir / "mlflow-artifacts",
    )
    deployer = EmbeddedDeployer(
        loader=VerifiedModelLoader(
            registry=registry, cache_dir=world.settings.data_dir / "loop-models"
        )
    )

    def drift(run: int) -> list[dict[str, Any]]:
        with session_scope(world.engine) as session:
            project = get_project(session=session, name="acme")
            [decision] = on_findings(
                session=session,
                actor=Actor.system(),
                project_id=project.id,
                run=RunFindings(
                    run_id=f"run-{run}",
                    source_id=f"monitor-{run}",
                    at=datetime(2026, 12, 1, 12, run, tzinfo=UTC),
                    findings=(Finding("drift", "drift_share", "dataset", 0.6, 0.3, Status.ALERT),),
                    model="income",
                    deployment="income-api",
                    environment="production",
                ),
                registry=registry,
                deployer=deployer,
            )
            return list(decision.outcomes)

    rolled, redeployed = drift(1)
    assert rolled["outcome"] == "failed"
    assert "rolling back to 'income' version 2" in rolled["error"]
    assert RULE in rolled["error"]
    assert redeployed["outcome"] == "done"  # version 1 is approved: reloading it is fine
    assert (world.state(), world.serving()) == (live, "1")

    world.legacy_record("2")  # an unapproved version live from old data is never redeployed
    _, redeploy = drift(2)
    assert redeploy["outcome"] == "failed"
    assert "redeploying 'income' version 2" in redeploy["error"]
    by_hand = world.post("/deployments/income-api/redeploy", {"environment": "production"})
    _refused(by_hand, "redeploying")  # a person's redeploy: the same rule
    assert world.denied("model.redeploy").target == "deployment:production:income-api"

    # The refusals were the rule's: once version 2 is approved, recording it puts it live.
    [legacy] = world.client.get(
        f"{BASE}/deployments", params={"live": "true"}, headers=world.scientist.headers
    ).json()
    ended = world.post(f"/deployments/{legacy['id']}/end", {})
    assert ended.status_code == 200, ended.text
    approve_version(
        world.client,
        project="acme",
        name="income",
        version="2",
        requester=world.scientist,
        approver=world.approver,
    )
    recorded = world.post("/deployments", {**SLOT, "model_name": "income", "model_version": "2"})
    assert recorded.status_code == 201, recorded.text
    assert world.serving() == "2"
    assert world.state() == (["income:2"], 3)


def test_a_recorded_deployment_meets_separation_of_duties_and_the_policy_gates(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    trainer = make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER], project="acme")
    colleague = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    approver = make_principal(role=Role.APPROVER, project="acme")
    admin = make_principal(role=Role.ADMIN, project="acme")
    registered = client.post(
        f"{BASE}/models/income/versions",
        json={"artifact_uri": "models:/income/1", "artifact_sha256": "a" * 64},
        headers=trainer.headers,
    )
    assert registered.status_code == 201, registered.text
    body = {**SLOT, "model_name": "income", "model_version": "1"}

    # A request that forgot to bar the registrar, approved by the registrar: refused.
    careless = client.post(
        f"{BASE}/approvals",
        json={
            "action": "promote",
            "target_kind": "model_version",
            "target_id": registered.json()["id"],
            "reason": "forgot to bar",
        },
        headers=colleague.headers,
    )
    assert careless.status_code == 201, careless.text
    own = client.post(
        f"{BASE}/approvals/{careless.json()['id']}/approve",
        json={"reason": "mine"},
        headers=trainer.headers,
    )
    assert own.status_code == 200, own.text
    refused = client.post(f"{BASE}/deployments", json=body, headers=colleague.headers)
    assert refused.status_code == 403
    assert "rule: separation of duties" in refused.json()["detail"]

    # Properly approved, but a policy gate wants two approvers: refused, naming the gate.
    approve_version(
        client, project="acme", name="income", version="1", requester=colleague, approver=approver
    )
    policy = client.post(
        f"{BASE}/policies",
        json={"name": "release", "source": "gates:\n  - {type: approvers, min: 2}\n"},
        headers=admin.headers,
    )
    assert policy.status_code == 201, policy.text
    gated = client.post(f"{BASE}/deployments", json=body, headers=colleague.headers)
    assert gated.status_code == 403
    assert "gate 'release v1 approvers': 1 approver(s), 2 required" in gated.json()["detail"]
    assert client.get(f"{BASE}/deployments", headers=colleague.headers).json() == []

    disabled = client.patch(
        f"{BASE}/policies/{policy.json()['id']}", json={"enabled": False}, headers=admin.headers
    )
    assert disabled.status_code == 200, disabled.text
    recorded = client.post(f"{BASE}/deployments", json=body, headers=colleague.headers)
    assert recorded.status_code == 201, recorded.text
    history = client.get(f"{BASE}/deployments/income-api/promotions", headers=admin.headers)
    assert [(p["kind"], p["deployer"], p["model_version"]) for p in history.json()] == [
        ("record", "external", "1")
    ]


def test_the_openlineage_ingest_never_records_a_deployment(
    client: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    ingester = make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-12-01T12:00:00Z",
        "producer": "https://example.com/attacker",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "deployment", "name": "income-api"},
        "outputs": [{"namespace": "deployment:production", "name": "income-api"}],
    }
    response = client.post(
        "/api/v1/lineage", params={"project": "acme"}, json=event, headers=ingester.headers
    )
    assert response.status_code < 300, response.text
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        assert live_deployments(session=session, project_id=project.id) == []


_NOT_SHIPPED = {"tests", "bench"}
# Who may call the storage steps under going live: one module each, no other way in.
_ONLY_CALLER = {
    "record_deployment": {"retrain/promotion.py"},
    "deploy": {"retrain/promotion.py"},
    "set_alias": {"retrain/promotion.py"},
    "Deployment": {"lineage/deployments.py"},
}


def test_only_the_promotion_rule_reaches_the_steps_that_put_a_version_live() -> None:
    callers: dict[str, set[str]] = {name: set() for name in _ONLY_CALLER}
    packages = [p.parent for p in ROOT.glob("*/__init__.py") if p.parent.name not in _NOT_SHIPPED]
    assert {"api", "lineage", "retrain"} <= {p.name for p in packages}
    for package in packages:
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in callers:
                    callers[name].add(path.relative_to(ROOT).as_posix())
    assert callers == _ONLY_CALLER


def _audited(world: World, action: str) -> AuditEntry:
    with session_scope(world.engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq.desc())  # type: ignore[attr-defined]
        ).first()
    assert entry is not None
    return entry


@pytest.mark.slow
def test_an_approved_rollback_is_carried_out_over_http_and_the_cli(world: World) -> None:
    approve_version(
        world.client,
        project="acme",
        name="income",
        version="2",
        requester=world.scientist,
        approver=world.approver,
    )
    slot = {"deployment": "income-api", "environment": "production"}
    assert world.post("/models/income/versions/2/promote", slot).status_code == 200
    assert world.serving() == "2"

    # A person redeploys the live version: reloaded, audited, still version 2.
    redeployed = world.post("/deployments/income-api/redeploy", {"environment": "production"})
    assert redeployed.status_code == 200, redeployed.text
    assert redeployed.json()["model_version"] == "2"
    assert _audited(world, "model.redeploy").outcome == "success"

    # A policy in request mode asks; an approver approves; nothing moves until it is carried out.
    policy = world.post(
        "/policies",
        {
            "name": "guard",
            "source": (
                "rules:\n"
                "  - name: guard\n"
                "    scope: {deployment: income-api}\n"
                "    when: {monitor: drift, metric: drift_share, op: '>=', threshold: 0.3}\n"
                "    actions:\n"
                "      - {type: rollback, mode: request}\n"
            ),
        },
        who=world.admin,
    )
    assert policy.status_code == 201, policy.text
    with session_scope(world.engine) as session:
        project = get_project(session=session, name="acme")
        [decision] = on_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            run=RunFindings(
                run_id="run-1",
                source_id="monitor-1",
                at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
                findings=(Finding("drift", "drift_share", "dataset", 0.6, 0.3, Status.ALERT),),
                model="income",
                deployment="income-api",
                environment="production",
            ),
        )
        approval_id = decision.outcomes[0]["approval_id"]
    approved = world.post(f"/approvals/{approval_id}/approve", {"reason": "yes"}, world.approver)
    assert approved.json()["status"] == "approved", approved.text
    assert (approved.json()["carry_out"], approved.json()["outcome"]) == ("by_requester", None)
    assert world.serving() == "2"
    not_theirs = world.post(f"/approvals/{approval_id}/carry-out", {}, world.approver)
    assert not_theirs.status_code == 403  # an approver holds no approval:request

    # Automation asked, so a person holding model:promote carries it out, with one call.
    carried = world.post(f"/approvals/{approval_id}/carry-out", {})
    assert carried.status_code == 200, carried.text
    assert carried.json()["outcome"]["outcome"] == "done"
    assert carried.json()["carried_out_at"] is not None
    assert world.serving() == "1"
    rollback_entry = _audited(world, "model.rollback")
    assert rollback_entry.detail_object()["request_id"] == approval_id
    assert (rollback_entry.detail_object()["before"], rollback_entry.detail_object()["after"]) == (
        "2",
        "1",
    )
    outcome = _audited(world, "approval.carry_out")
    assert (outcome.target, outcome.outcome) == (f"approval:{approval_id}", "success")
    twice = world.post(f"/approvals/{approval_id}/carry-out", {})
    assert twice.status_code == 409
    assert "carried out already" in twice.json()["detail"]

    # At once on approval, when the project says so: a person's redeploy request.
    put = world.client.put(
        f"{BASE}/approval-rules/redeploy",
        json={"carry_out": "on_approval"},
        headers=world.admin.headers,
    )
    assert put.status_code == 200, put.text
    rule = world.client.get(f"{BASE}/approval-rules/redeploy", headers=world.scientist.headers)
    assert rule.json() == {
        "action": "redeploy",
        "required_approvers": 1,
        "carry_out": "on_approval",
    }
    asked = world.post(
        "/approvals",
        {
            "action": "redeploy",
            "target_kind": "deployment",
            "target_id": "income-api/production",
            "reason": "reload",
        },
    )
    assert asked.status_code == 201, asked.text
    done = world.post(f"/approvals/{asked.json()['id']}/approve", {"reason": "ok"}, world.approver)
    assert done.json()["outcome"] == {
        "type": "redeploy",
        "deployment": "income-api",
        "model_version": "1",
        "outcome": "done",
    }
    assert _audited(world, "model.redeploy").detail_object()["request_id"] == asked.json()["id"]

    # The command line: version 2 again, then `warden models rollback` puts version 1 back.
    assert world.post("/models/income/versions/2/promote", slot).status_code == 200
    assert world.serving() == "2"
    warden = CliRunner(
        env={
            "WARDEN_DATABASE_URL": world.settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(world.settings.data_dir),
            "WARDEN_MLFLOW_TRACKING_URI": world.settings.resolved_mlflow_uri(),
        }
    )
    rolled = warden.invoke(
        cli, ["models", "rollback", "-p", "acme", "income-api", "--reason", "bad night"]
    )
    assert rolled.exit_code == 0, rolled.output
    assert "income-api (production) rolled back" in rolled.stdout
    assert world.serving() == "1"
    entry = _audited(world, "model.rollback")
    assert (entry.reason, entry.detail_object()["after"]) == ("bad night", "1")


@pytest.mark.slow
def test_a_no_worse_gate_refuses_over_http_showing_the_intervals(world: World) -> None:
    approve_version(
        world.client,
        project="acme",
        name="income",
        version="2",
        requester=world.scientist,
        approver=world.approver,
    )
    bad_level = world.post(
        "/policies",
        {"name": "nw", "source": "gates:\n  - {type: metric_no_worse, confidence: 0.9}\n"},
        who=world.admin,
    )
    assert bad_level.status_code == 422
    assert "only 0.95" in bad_level.text
    policy = world.post(
        "/policies",
        {"name": "nw", "source": "gates:\n  - {type: metric_no_worse, max_drop: 0.005}\n"},
        who=world.admin,
    )
    assert policy.status_code == 201, policy.text
    with session_scope(world.engine) as session:
        versions = {v.version: v for v in session.exec(select(ModelVersion)).all()}
        project = get_project(session=session, name="acme")
        session.add(  # what the worker's evaluation stores: values and 95 % bootstrap intervals
            Evaluation(
                project_id=project.id,
                model_name="income",
                candidate_version_id=versions["2"].id,
                champion_version_id=versions["1"].id,
                holdout="holdout",
                rows=200,
                performance={
                    "candidate": {"accuracy": 0.852},
                    "champion": {"accuracy": 0.85},
                    "intervals": {
                        "candidate": {"accuracy": [0.81, 0.89]},
                        "champion": {"accuracy": [0.80, 0.88]},
                    },
                },
                fairness={},
            )
        )
    refused = world.post(
        "/models/income/versions/2/promote",
        {"deployment": "income-api", "environment": "production"},
    )
    assert refused.status_code == 403, refused.text
    detail = refused.json()["detail"]
    assert "accuracy 0.8520 [0.8100, 0.8900] vs champion 0.8500 [0.8000, 0.8800]" in detail
    assert "not shown to be no worse with 95% confidence" in detail
    assert world.serving() == "1"


@pytest.mark.slow
def test_the_challenger_alias_is_set_then_moved_on_rejection_and_promotion(world: World) -> None:
    registry = Registry(
        tracking_uri=world.settings.resolved_mlflow_uri(),
        artifact_root=world.settings.data_dir / "mlflow-artifacts",
    )
    with session_scope(world.engine) as session:
        candidate = session.exec(select(ModelVersion).where(ModelVersion.version == "2")).one()
    mark_challenger(registry=registry, candidate=candidate)  # what an evaluation run does
    assert (
        registry.alias_version("income", CHAMPION),
        registry.alias_version("income", CHALLENGER),
    ) == ("1", "2")

    asked = world.post("/models/income/versions/2/promotion-requests", {"reason": "better"})
    rejected = world.post(
        f"/approvals/{asked.json()['approval_id']}/reject", {"reason": "no"}, world.approver
    )
    assert rejected.json()["status"] == "rejected", rejected.text
    assert registry.alias_version("income", CHALLENGER) is None

    mark_challenger(registry=registry, candidate=candidate)
    approve_version(
        world.client,
        project="acme",
        name="income",
        version="2",
        requester=world.scientist,
        approver=world.approver,
    )
    promoted = world.post(
        "/models/income/versions/2/promote",
        {"deployment": "income-api", "environment": "production"},
    )
    assert promoted.status_code == 200, promoted.text
    assert (
        registry.alias_version("income", CHAMPION),
        registry.alias_version("income", CHALLENGER),
    ) == ("2", None)
