"""The command line's client mode against a live Warden: uvicorn on 127.0.0.1 and a worker.

Every command is driven through typer's ``CliRunner`` with ``--url`` and a real API key, so it is
a REST call as that principal: a refusal is the server's refusal, word for word, and ``--json``
prints what the server answered. Direct mode (no URL) is audited as break-glass.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from api.app import create_app
from api.cli import app
from api.settings import Settings
from api.worker_process import run_worker
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued

pytestmark = pytest.mark.slow

SCHEMA = {"age": "integer", "hours": "float", "workclass": "category"}
POLICY = """
rules:
  - name: retrain-on-drift
    scope: {model: income}
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    cooldown_seconds: 3600
    actions:
      - {type: retrain, pipeline: income-train}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Live(NamedTuple):
    """A live Warden for the CLI: its URL, store, and people holding keys."""

    url: str
    engine: Engine
    project: Project
    scientist: Issued
    approver: Issued
    dana: Issued  # a data scientist who also holds the approver role
    admin: Issued
    root: Issued  # a global administrator
    deployment_id: uuid.UUID


@pytest.fixture
def live(
    settings: Settings,
    engine: Engine,
    make_project: Callable[[str], Project],
    make_principal: Callable[..., Issued],
) -> Iterator[Live]:
    """Serve the app with uvicorn on a free local port, with a worker thread beside it."""
    project = make_project("acme")
    with session_scope(engine) as session:
        register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(external=True, feature_schema=SCHEMA),
        )
        deployment = record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="1"
            ),
        )
    people = {
        "scientist": make_principal(role=Role.DATA_SCIENTIST, name="sam"),
        "approver": make_principal(role=Role.APPROVER, name="avery"),
        "dana": make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER], name="dana"),
        "admin": make_principal(role=Role.ADMIN, name="ada"),
        "root": make_principal(admin=True, name="root"),
    }
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.run, daemon=True),
        threading.Thread(target=run_worker, args=(settings, engine, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.05)
    yield Live(
        url=f"http://127.0.0.1:{port}",
        engine=engine,
        project=project,
        deployment_id=deployment.id,
        **people,
    )
    server.should_exit = True
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


def cli(live: Live, who: Issued, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``warden --url … ARGS`` as ``who`` in project acme."""
    runner = CliRunner(
        env={"WARDEN_API_KEY": who.key, "WARDEN_PROJECT": "acme", "XDG_CONFIG_HOME": "/nonexistent"}
        | (env or {})
    )
    return runner.invoke(app, ["--url", live.url, *args])


def answer(result: Result) -> Any:
    """Return the ``--json`` output of a command that succeeded."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _request_promotion(live: Live, who: Issued) -> str:
    opened = httpx.post(
        f"{live.url}/api/v1/projects/acme/approvals",
        json={
            "action": "promote",
            "target_kind": "model_version",
            "target_id": "income:1",
            "reason": "v1 is better",
        },
        headers=who.headers,
    )
    assert opened.status_code == 201, opened.text
    approval_id: str = opened.json()["id"]
    return approval_id


def _refusal_over_rest(live: Live, who: Issued, approval_id: str) -> str:
    refused = httpx.post(
        f"{live.url}/api/v1/projects/acme/approvals/{approval_id}/approve",
        json={"reason": "looks fine"},
        headers=who.headers,
    )
    assert refused.status_code == 403, refused.text
    return f"error: 403 {refused.json()['detail']}"


def test_approvals_are_refused_by_the_cli_exactly_as_over_rest(live: Live) -> None:
    approval_id = _request_promotion(live, live.dana)

    # A data scientist without the approver role: the permission check refuses.
    over_rest = _refusal_over_rest(live, live.scientist, approval_id)
    by_cli = cli(live, live.scientist, "approvals", "approve", approval_id, "--reason", "fine")
    assert by_cli.exit_code == 1
    assert by_cli.stderr.strip() == over_rest
    assert "approval:decide" in over_rest

    # dana holds the approver role but requested it: separation of duties refuses, the same way.
    over_rest = _refusal_over_rest(live, live.dana, approval_id)
    by_cli = cli(live, live.dana, "approvals", "approve", approval_id, "--reason", "mine")
    assert by_cli.exit_code == 1
    assert by_cli.stderr.strip() == over_rest

    listed = answer(cli(live, live.approver, "approvals", "list", "--for-me", "--json"))
    assert [a["id"] for a in listed] == [approval_id]
    approved = answer(
        cli(live, live.approver, "approvals", "approve", approval_id, "--reason", "ok", "--json")
    )
    assert approved["status"] == "approved"
    assert [(d["principal_name"], d["reason"]) for d in approved["decisions"]] == [("avery", "ok")]

    # Each refusal (twice each: over REST, then by the CLI) and the approval are audited under
    # the signed-in principal.
    with session_scope(live.engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        denied = [e.actor_name for e in entries if e.outcome == "denied"]
        approvals = [(e.actor_name, e.outcome) for e in entries if e.action == "approval.approve"]
    assert denied.count("sam") == 2
    assert denied.count("dana") == 2
    assert approvals[-1] == ("avery", "success")


def _reference(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 70, rows) + int(shift),
            "hours": rng.normal(40 + shift, 8, rows),
            "workclass": rng.choice(["private", "public", "self"], rows),
        }
    )


def test_monitors_and_baselines_round_trip_through_the_api_and_a_worker(
    live: Live, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.csv"
    _reference(2_000, seed=1).to_csv(reference, index=False)
    baseline = answer(
        cli(
            live,
            live.scientist,
            "baselines",
            "upload",
            "-d",
            "income-api",
            str(reference),
            "--json",
        )
    )
    assert baseline["deployment_id"] == str(live.deployment_id)  # the name, resolved
    assert baseline["rows"] == 2_000
    listed = answer(
        cli(live, live.scientist, "baselines", "list", "--deployment", "income-api", "--json")
    )
    assert [b["id"] for b in listed] == [baseline["id"]]

    window = _reference(1_500, seed=2, shift=15.0)
    records = [
        {"request_id": f"r{i}", "features": row, "prediction": 1}
        for i, row in enumerate(window.to_dict(orient="records"))
    ]
    logged = httpx.post(
        f"{live.url}/api/v1/projects/acme/deployments/income-api/inferences",
        json={"records": records},
        headers=live.scientist.headers,
        timeout=60,
    )
    assert logged.status_code == 201, logged.text

    spec = tmp_path / "drift.yaml"
    spec.write_text(
        "name: drift-now\ndeployment_id: income-api\nspec: {kind: drift}\nwindow: last:1h\n"
    )
    created = answer(cli(live, live.scientist, "monitors", "create", "-f", str(spec), "--json"))
    assert created["deployment_id"] == str(live.deployment_id)
    assert created["schedule"] is None  # runs on request only
    assert [m["name"] for m in answer(cli(live, live.scientist, "monitors", "list", "--json"))] == [
        "drift-now"
    ]

    run = answer(cli(live, live.scientist, "monitors", "run", "drift-now", "--json"))
    assert run["state"] == "succeeded", run
    assert run["trigger"] == "manual"
    statuses = {(f["metric"], f["scope"]): f["status"] for f in run["summary"]["findings"]}
    assert statuses[("drift_share", "dataset")] == "alert"  # hours and age shifted, 2 of 3
    assert run["summary"]["rows"] == 1_500

    shown = answer(cli(live, live.scientist, "monitors", "show", "drift-now", "--json"))
    assert [r["id"] for r in shown["runs"]] == [run["id"]]
    human = cli(live, live.scientist, "monitors", "show", "drift-now")
    assert human.exit_code == 0, human.output
    assert f"run {run['id']}: succeeded" in human.stdout

    # A viewer-less outsider is refused by the server, with its problem detail.
    nobody = cli(live, live.approver, "monitors", "run", "drift-now")
    assert nobody.exit_code == 1
    assert nobody.stderr.startswith("error: 403 ")
    assert "monitor:run" in nobody.stderr


def test_policies_validate_offline_then_create_dry_run_and_activate(
    live: Live, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("threshold: 0.3", "threshold: lots"))
    refused = CliRunner().invoke(app, ["policies", "validate", str(bad), "--json"])
    assert refused.exit_code == 1
    verdict = json.loads(refused.stdout)
    assert verdict["valid"] is False
    assert verdict["field"] == "rules[0].when.all[0].threshold"

    good = tmp_path / "good.yaml"
    good.write_text(POLICY)
    assert answer(CliRunner().invoke(app, ["policies", "validate", str(good), "--json"]))["valid"]

    denied = cli(live, live.scientist, "policies", "create", "drift-retrain", "-f", str(good))
    assert denied.exit_code == 1
    assert "policy:write" in denied.stderr
    made = answer(
        cli(live, live.admin, "policies", "create", "drift-retrain", "-f", str(good), "--json")
    )
    assert (made["name"], made["active_version"]) == ("drift-retrain", 1)

    runs = tmp_path / "runs.yaml"
    runs.write_text(
        json.dumps(
            [
                {
                    "model": "income",
                    "findings": [
                        {
                            "monitor": "drift",
                            "metric": "drift_share",
                            "value": 0.5,
                            "threshold": 0.3,
                            "status": "alert",
                        }
                    ],
                }
            ]
        )
    )
    dry = answer(
        cli(
            live,
            live.scientist,
            "policies",
            "dry-run",
            "drift-retrain",
            "--findings",
            str(runs),
            "--json",
        )
    )
    assert dry["runs"] == 1
    assert len(dry["decisions"]) == 1
    assert dry["decisions"][0]["rule"] == "retrain-on-drift"
    nothing = answer(
        cli(
            live,
            live.scientist,
            "policies",
            "dry-run",
            "drift-retrain",
            "--last-runs",
            "3",
            "--json",
        )
    )
    assert (nothing["runs"], nothing["decisions"]) == (0, [])

    second = tmp_path / "second.yaml"
    second.write_text(POLICY.replace("0.3", "0.25"))
    added = answer(
        cli(
            live,
            live.admin,
            "policies",
            "add-version",
            "drift-retrain",
            "-f",
            str(second),
            "--json",
        )
    )
    assert (added["version"], added["active"]) == (2, True)
    back = answer(cli(live, live.admin, "policies", "activate", "drift-retrain", "1", "--json"))
    assert (back["version"], back["active"]) == (1, True)
    shown = answer(cli(live, live.scientist, "policies", "show", "drift-retrain", "--json"))
    assert [(v["version"], v["active"]) for v in shown["versions"]] == [(1, True), (2, False)]


def test_alert_rules_are_created_switched_and_deleted(live: Live, tmp_path: Path) -> None:
    allowed = httpx.post(
        f"{live.url}/api/v1/projects/acme/outbound-allowlist",
        json={"target": "127.0.0.1", "note": "test receiver"},
        headers=live.admin.headers,
    )
    assert allowed.status_code == 201, allowed.text
    channel = httpx.post(
        f"{live.url}/api/v1/projects/acme/alert-channels",
        json={"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook"},
        headers=live.scientist.headers,
    )
    assert channel.status_code == 201, channel.text
    rule = tmp_path / "rule.yaml"
    rule.write_text(
        "name: page-on-drift\nmonitor_kinds: [drift]\n"
        f"channel_ids: [{channel.json()['channel']['id']}]\n"
    )
    made = answer(cli(live, live.scientist, "alert-rules", "create", "-f", str(rule), "--json"))
    assert (made["name"], made["enabled"], made["min_status"]) == ("page-on-drift", True, "alert")
    off = answer(
        cli(live, live.scientist, "alert-rules", "enable", "page-on-drift", "--off", "--json")
    )
    assert off["enabled"] is False
    listed = cli(live, live.scientist, "alert-rules", "list")
    assert listed.exit_code == 0
    assert "page-on-drift" in listed.stdout
    assert "disabled" in listed.stdout
    bad = tmp_path / "bad-rule.yaml"
    bad.write_text("name: x\nchannel_ids: []\n")
    refused = cli(live, live.scientist, "alert-rules", "create", "-f", str(bad))
    assert refused.exit_code == 1
    assert "(field: channel_ids)" in refused.stderr
    gone = answer(cli(live, live.scientist, "alert-rules", "delete", "page-on-drift", "--json"))
    assert gone["name"] == "page-on-drift"
    assert answer(cli(live, live.scientist, "alert-rules", "list", "--json")) == []


def test_the_key_comes_from_a_private_config_file_and_never_from_one_others_can_read(
    live: Live, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{live.url}"\napi_key = "{live.scientist.key}"\nproject = "acme"\n')
    os.chmod(config, 0o644)
    runner = CliRunner(env={"WARDEN_API_KEY": None, "WARDEN_URL": None, "WARDEN_PROJECT": None})
    refused = runner.invoke(app, ["--config", str(config), "whoami"])
    assert refused.exit_code == 2
    assert f"chmod 600 {config}" in refused.stderr

    os.chmod(config, 0o600)
    me = answer(runner.invoke(app, ["--config", str(config), "whoami", "--json"]))
    assert me["principal"]["name"] == "sam"
    assert me["roles"] == [{"project": "acme", "role": "data_scientist"}]
    listed = answer(runner.invoke(app, ["--config", str(config), "monitors", "list", "--json"]))
    assert listed == []


def test_client_commands_say_what_is_missing(live: Live, tmp_path: Path) -> None:
    runner = CliRunner(
        env={
            "WARDEN_API_KEY": None,
            "WARDEN_URL": None,
            "WARDEN_CONFIG": None,
            "XDG_CONFIG_HOME": str(tmp_path),
        }
    )
    no_url = runner.invoke(app, ["monitors", "list", "-p", "acme"])
    assert no_url.exit_code == 2
    assert "give --url, set WARDEN_URL" in no_url.stderr
    no_key = runner.invoke(app, ["--url", live.url, "monitors", "list", "-p", "acme"])
    assert no_key.exit_code == 2
    assert "no API key" in no_key.stderr
    bad_key = CliRunner(env={"WARDEN_API_KEY": "wdn_nope_nope"}).invoke(
        app, ["--url", live.url, "monitors", "list", "-p", "acme"]
    )
    assert bad_key.exit_code == 1
    assert bad_key.stderr.startswith("error: 401 ")
    down = CliRunner(env={"WARDEN_API_KEY": live.scientist.key}).invoke(
        app, ["--url", f"http://127.0.0.1:{_free_port()}", "monitors", "list", "-p", "acme"]
    )
    assert down.exit_code == 2
    assert "cannot reach Warden" in down.stderr


def test_direct_mode_is_audited_as_break_glass(settings: Settings, engine: Engine) -> None:
    runner = CliRunner(
        env={
            "WARDEN_DATABASE_URL": settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(settings.data_dir),
            "WARDEN_URL": None,
            "USER": "root-on-server",
            "LOGNAME": "root-on-server",
        }
    )
    first = runner.invoke(app, ["admin", "bootstrap", "--username", "root", "--json"])
    assert json.loads(first.stdout)["api_key"].startswith("wdn_")
    made = runner.invoke(app, ["admin", "project", "create", "emergency", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout) == {"project": "emergency"}
    assert "direct mode" not in made.stdout  # the warning, if any, goes to stderr
    with session_scope(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "project.create")).one()
    assert (entry.actor_name, entry.actor_kind, entry.actor_id) == (
        "break-glass:root-on-server",
        "system",
        None,
    )


def test_pipelines_and_rollback_go_through_the_api_as_the_principal(
    live: Live, tmp_path: Path
) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        json.dumps(
            {
                "name": "echo",
                "model_name": "income",
                "steps": [{"name": "say", "command": ["python", "-c", "print('hi')"]}],
            }
        )
    )
    defined = answer(cli(live, live.scientist, "pipelines", "define", "-f", str(spec), "--json"))
    assert defined["name"] == "echo"
    started = answer(
        cli(live, live.scientist, "pipelines", "run", "echo", "--reason", "x", "--json")
    )
    assert started["requested_by_name"] == "sam"  # the signed-in principal, not a system actor
    assert started["reason"] == "x"
    now = cli(live, live.scientist, "pipelines", "run", "echo", "--now")
    assert now.exit_code == 2
    assert "direct mode" in now.stderr
    cancelled = answer(cli(live, live.scientist, "pipelines", "cancel", started["id"], "--json"))
    assert cancelled["id"] == started["id"]
    assert cancelled["cancel_requested"] or cancelled["state"] == "cancelled"
    listed = answer(cli(live, live.scientist, "pipelines", "runs", "--json"))
    assert [r["id"] for r in listed] == [started["id"]]

    # Nothing was live before v1: the server refuses the rollback, and the CLI says the same.
    over_rest = httpx.post(
        f"{live.url}/api/v1/projects/acme/deployments/income-api/rollback",
        json={"environment": "production", "reason": "bad"},
        headers=live.scientist.headers,
    )
    assert over_rest.status_code == 409
    by_cli = cli(live, live.scientist, "models", "rollback", "income-api", "--reason", "bad")
    assert by_cli.exit_code == 1
    assert by_cli.stderr.strip() == f"error: 409 {over_rest.json()['detail']}"


def test_reports_are_rendered_by_warden_for_the_principal(live: Live, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    written = cli(
        live, live.scientist, "report", "model", "income", "1", "--project", "acme",
        "--format", "json", "--out", str(out),
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    card = json.loads(out.read_text())
    assert "income" in json.dumps(card)
    with session_scope(live.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "report.generate")).one()
    assert entry.actor_name == "sam"
    missing = cli(live, live.scientist, "report", "model", "income", "9", "--project", "acme")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: 404 ")


def test_the_audit_chain_is_verified_exported_and_signed_through_the_api(
    live: Live, tmp_path: Path
) -> None:
    made = cli(live, live.root, "audit", "checkpoint")
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("checkpoint at ")
    refused = cli(live, live.scientist, "audit", "checkpoint")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 403 ")
    report = cli(live, live.root, "audit", "verify", "--json")
    assert report.exit_code == 0, report.output
    verified = json.loads(report.stdout)
    assert verified["intact"]
    assert verified["checkpoints"] >= 1
    export = tmp_path / "audit.jsonl"
    assert cli(live, live.root, "audit", "export", "--out", str(export)).exit_code == 0
    offline = CliRunner().invoke(app, ["audit", "verify", "--file", str(export), "--json"])
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["entries"] == verified["entries"]  # up to its own entry
