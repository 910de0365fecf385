"""``warden demo --no-serve`` in a fresh directory: every step of both loops happened, in order.

The demo runs as a user would run it (the installed ``warden`` command, a real server on a free
port, a fresh working directory with nothing copied into it). Everything checked afterwards is
read back from the API of an app built on the store the demo left behind, with the
administrator's key from the demo's ``--json`` summary: audit sequence numbers prove the order,
lineage proves what the retrained version was made from, and the audit chain verifies. The LLM
loop answers with the demo's local stand-in (a fake OpenAI-compatible server on 127.0.0.1: no
model can run here), traced with the stock OpenTelemetry SDK over OTLP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.demo import DEMO_MARKER, PROJECT
from api.settings import Settings

BASE = f"/api/v1/projects/{PROJECT}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _warden() -> str:
    return str(Path(sys.executable).with_name("warden"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the demo once in a fresh directory; return its JSON summary and where it ran."""
    root = tmp_path_factory.mktemp("demo")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")},
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [_warden(), "demo", "--no-serve", "--port", str(_free_port()), "--json", "summary.json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    summary: dict[str, Any] = json.loads((root / "summary.json").read_text())
    return {"root": root, "summary": summary, "stdout": done.stdout}


@pytest.fixture(scope="module")
def api(demo: dict[str, Any]) -> Iterator[TestClient]:
    """Return a client of an app on the demo's store."""
    data_dir = demo["root"] / ".warden"
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'warden.db'}",
        mlflow_tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _headers(demo: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo['summary']['people'][name]['api_key']}"}


def _audit(
    api: TestClient, headers: dict[str, str], project: str | None = None
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        params: dict[str, Any] = {"after": after, "limit": 1000}
        if project is not None:
            params["project"] = project
        page = api.get("/api/v1/audit", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        rows = body["entries"] if isinstance(body, dict) else body
        if not rows:
            return entries
        entries.extend(rows)
        after = rows[-1]["seq"]


def _first(entries: list[dict[str, Any]], action: str, **where: str) -> dict[str, Any]:
    """Return the first entry of ``action`` whose fields contain the given texts."""
    for entry in entries:
        if entry["action"] == action and all(
            text
            in (json.dumps(entry[k], separators=(",", ":")) if k == "detail" else str(entry[k]))
            for k, text in where.items()
        ):
            return entry
    raise AssertionError(f"no audit entry {action} {where}")


@pytest.mark.slow
def test_the_demo_prints_numbered_steps_credentials_and_a_summary(demo: dict[str, Any]) -> None:
    out = demo["stdout"]
    positions = [out.index(f"[{n}/8]") for n in range(1, 9)]
    assert positions == sorted(positions)
    for person in demo["summary"]["people"].values():
        assert person["api_key"] in out
    assert "What happened" in out
    assert [s["step"] for s in demo["summary"]["steps"]] == [str(n) for n in range(1, 9)]
    # The LLM loop says plainly that no model answered: the local stand-in did.
    for said in ("STAND-IN", "not a model", "--llm-base-url"):
        assert said in out
    assert demo["summary"]["facts"]["llm"]["stand_in"] is True
    links = demo["summary"]["links"]
    assert {"llm_traces", "llm_evaluation", "llm_monitors", "llm_drift_run"} <= set(links)
    assert (demo["root"] / ".warden" / DEMO_MARKER).is_file()


@pytest.mark.slow
def test_every_step_of_the_loop_happened_in_order(demo: dict[str, Any], api: TestClient) -> None:
    admin = _headers(demo, "admin")
    facts = demo["summary"]["facts"]
    entries = _audit(api, admin)
    champion, challenger = facts["champion"], facts["challenger"]
    v1_promoted = _first(entries, "model.promote", reason="first income model")
    v2_promoted = _first(entries, "model.promote", reason="retrained after drift")
    policy_run = _first(entries, "pipeline_run.request", actor_kind="system")
    seq = {
        "people granted roles": _first(entries, "role.grant", actor_name="admin")["seq"],
        "training requested": _first(entries, "pipeline_run.request", actor_name="dana")["seq"],
        "v1 registered": _first(entries, "pipeline_run.succeeded")["seq"],
        "v1 evaluated": _first(entries, "model.evaluate")["seq"],
        "v1 approved": _first(entries, "approval.approve", actor_name="avery")["seq"],
        "v1 promoted": v1_promoted["seq"],
        "baseline built": _first(entries, "baseline.create")["seq"],
        "monitors scheduled": _first(entries, "monitor.create")["seq"],
        "webhook allowed": _first(entries, "outbound_allow.add")["seq"],
        "traffic logged": _first(entries, "inference.log")["seq"],
        "labels posted": _first(entries, "inference.label")["seq"],
        "policy set": _first(entries, "policy.create")["seq"],
        "retraining requested by the policy": policy_run["seq"],
        "v2 evaluated against v1": _first(entries, "model.evaluate", detail='"champion":"1"')[
            "seq"
        ],
        "v2 promoted": v2_promoted["seq"],
        "model card written": _first(entries, "model_card.update")["seq"],
        "reports generated": _first(entries, "report.generate")["seq"],
    }
    assert list(seq.values()) == sorted(seq.values()), seq
    decided = _first(entries, "policy.decide")["seq"]
    assert seq["policy set"] < decided < seq["v2 evaluated against v1"]
    # The drift monitor's alert rule opened the incident the policy then attached to.
    drift_monitor = facts["monitors"]["drift"]
    opened = _first(entries, "incident.open", detail=f'"source":"monitor:{drift_monitor}"')
    assert seq["traffic logged"] < opened["seq"] < decided
    assert v1_promoted["detail"]["after"] == champion["version"] == "1"
    assert (v2_promoted["detail"]["before"], v2_promoted["detail"]["after"]) == ("1", "2")
    assert "policy 'drift-retrain'" in policy_run["reason"]

    # The policy, not a person, asked for the retraining run, on the recent labelled data.
    run = api.get(f"{BASE}/pipeline-runs/{challenger['pipeline_run_id']}", headers=admin).json()
    assert (run["state"], run["pipeline"], run["requested_by"]) == (
        "succeeded",
        "income-retrain",
        None,
    )
    decisions = api.get(
        f"{BASE}/policies/{facts['drift_policy_id']}/decisions", headers=admin
    ).json()
    fired = [d for d in decisions if d["status"] == "fire"]
    assert {o["type"]: o["outcome"] for o in fired[0]["outcomes"]} == {
        "open_incident": "done",
        "retrain": "done",
    }
    assert facts["drift_run_id"] in fired[0]["run_ids"]
    provenance = api.get(
        f"{BASE}/models/income/versions/{challenger['version']}/provenance", headers=admin
    )
    assert provenance.status_code == 200, provenance.text
    assert "income-api-labelled-traffic" in provenance.text

    # The challenger was scored beside the champion, and is what the deployment serves now.
    evaluations = api.get(
        f"{BASE}/models/income/versions/{challenger['version']}/evaluations", headers=admin
    ).json()
    assert evaluations[0]["champion_version_id"] is not None
    assert set(evaluations[0]["sensitive_features"]) == {"sex", "race"}
    live = api.get(f"{BASE}/deployments/income-api/promotions", headers=admin).json()
    assert live[0]["model_version"] == challenger["version"]

    # The drift monitor found the shift; the policy's incident is open; the webhook heard of it.
    drift = api.get(f"{BASE}/monitor-runs/{facts['drift_run_id']}", headers=admin).json()
    assert drift["summary"]["status"] == "alert"
    assert "io.warden.incident.opened" in facts["webhook_events"]
    incident = api.get(f"{BASE}/incidents/{facts['incident_id']}", headers=admin).json()
    assert (incident["source_kind"], incident["state"]) == ("monitor", "open")
    attached = [i for o in fired[0]["outcomes"] for i in o.get("incident_ids", [])]
    assert attached == [incident["id"]]
    incidents = api.get(f"{BASE}/incidents", headers=admin).json()
    assert [i["id"] for i in incidents if i["source_id"] == incident["source_id"]] == attached
    rollback = api.get(f"{BASE}/policies/{facts['rollback_policy_id']}", headers=admin).json()
    assert rollback["enabled"] is True
    assert rollback["active_version"] == 1


@pytest.mark.slow
def test_separation_of_duties_held_and_the_audit_chain_verifies(
    demo: dict[str, Any], api: TestClient
) -> None:
    admin = _headers(demo, "admin")
    entries = _audit(api, admin, PROJECT)
    decided = [e for e in entries if e["action"] == "approval.approve"]
    approved = [e for e in decided if e["outcome"] == "success"]
    assert [e["actor_name"] for e in approved] == ["avery"] * 2
    # Dana holds the approver role: the separation-of-duties rule, not a permission, refuses her.
    refused = [e for e in decided if e["outcome"] == "denied"]
    assert [e["actor_name"] for e in refused] == ["dana", "dana"]
    assert all("another approver must decide it" in e["reason"] for e in refused)
    promoted = [e for e in entries if e["action"] == "model.promote"]
    assert {e["actor_name"] for e in promoted} == {"dana"}
    verify = api.get("/api/v1/audit/verify", headers=_headers(demo, "alex"))
    assert verify.status_code == 200, verify.text
    assert verify.json()["intact"] is True
    assert verify.json()["first_broken_seq"] is None


@pytest.mark.slow
def test_the_llm_loop_happened_in_order(demo: dict[str, Any], api: TestClient) -> None:
    admin = _headers(demo, "admin")
    facts = demo["summary"]["facts"]["llm"]
    project = facts["project"]
    entries = _audit(api, admin, project)
    approvals, runs = facts["approvals"], facts["evaluation_runs"]
    registered = [e for e in entries if e["action"] == "prompt_version.register"]
    assert [e["actor_name"] for e in registered] == ["dana", "dana"]
    rolled_back = _first(entries, "prompt.rollback", detail='"before":"2"')
    seq = {
        "v1 registered": registered[0]["seq"],
        "v1 approved": _first(entries, "approval.approve", target=f"approval:{approvals['1']}")[
            "seq"
        ],
        "v1 live": _first(entries, "prompt.promote", detail='"after":"1"')["seq"],
        "v1 evaluated": _first(entries, "eval_run.succeeded", target=f"eval_run:{runs['1']}")[
            "seq"
        ],
        "v2 registered": registered[1]["seq"],
        "v2 evaluated": _first(entries, "eval_run.succeeded", target=f"eval_run:{runs['2']}")[
            "seq"
        ],
        "v2 approved": _first(entries, "approval.approve", target=f"approval:{approvals['2']}")[
            "seq"
        ],
        "traffic traced": _first(entries, "trace.ingest", actor_name="support-bot-app")["seq"],
        "v2 live": _first(entries, "prompt.promote", detail='"after":"2"')["seq"],
        "policy set": _first(entries, "policy.create")["seq"],
        "monitors run": _first(entries, "monitor.run")["seq"],
        "rolled back to v1": rolled_back["seq"],
        "policy decided": _first(entries, "policy.decide")["seq"],
        "budget warned": _first(entries, "budget.warn")["seq"],
    }
    assert list(seq.values()) == sorted(seq.values()), seq
    # Avery, not Dana who wrote them, approved both versions; the policy, not a person, rolled back.
    for version in ("1", "2"):
        approved = _first(entries, "approval.approve", target=f"approval:{approvals[version]}")
        assert (approved["actor_name"], approved["outcome"]) == ("avery", "success")
    assert (rolled_back["actor_kind"], rolled_back["detail"]["after"]) == ("system", "1")
    assert "policy 'refusal-rollback'" in rolled_back["reason"]
    assert [e["action"] for e in entries].count("budget.warn") == 1
    assert "budget.breach" not in {e["action"] for e in entries}

    base = f"/api/v1/projects/{project}"
    live = api.get(f"{base}/prompts/support@production", headers=admin)
    assert live.status_code == 200, live.text
    assert live.json()["version"] == "1"
    # Both versions were compared side by side on the same golden set.
    compared = api.get(
        f"{base}/evaluation/comparison", params={"runs": f"{runs['1']},{runs['2']}"}, headers=admin
    )
    assert compared.status_code == 200, compared.text
    assert [r["state"] for r in compared.json()["runs"]] == ["succeeded", "succeeded"]
    # The shifted traffic: embedding drift of the questions alerted, the refusal rate too.
    drift = api.get(f"{base}/monitor-runs/{facts['drift_run_id']}", headers=admin).json()
    assert drift["summary"]["status"] == "alert"
    assert facts["drift_alerts"]
    described = api.get(f"{base}/monitor-runs/{facts['descriptor_run_id']}", headers=admin).json()
    refusal = [f for f in described["summary"]["findings"] if f["metric"] == "refusal_rate"]
    assert any(f["status"] == "alert" and f["value"] > 0.2 for f in refusal)
    decisions = api.get(f"{base}/policies/{facts['policy_id']}/decisions", headers=admin).json()
    fired = [d for d in decisions if d["status"] == "fire"]
    assert [{o["type"]: o["outcome"] for o in d["outcomes"]} for d in fired] == [
        {"rollback": "done"}
    ]
    assert facts["answered_after_rollback_by"] == "1"
    # As the README says: 150 questions a window, half of the shifted ones about card loss.
    assert (facts["traffic"], facts["surge"]) == (150, 75)
    # Every question was traced over OTLP, linked to the version that answered it.
    for version, least in (("1", facts["traffic"]), ("2", facts["traffic"])):
        traced = api.get(
            f"{base}/traces",
            params={"prompt_name": "support", "prompt_version": version, "limit": 500},
            headers=admin,
        )
        assert traced.status_code == 200, traced.text
        rows = traced.json()
        rows = rows["traces"] if isinstance(rows, dict) else rows
        assert len(rows) >= least
    budget = api.get(f"{base}/budgets/{facts['budget_id']}", headers=admin).json()
    assert budget["reached"] == [0.5]
    assert budget["over_budget"] is False


def test_the_demo_refuses_a_store_that_is_not_a_demo_store(tmp_path: Path) -> None:
    store = tmp_path / ".warden"
    store.mkdir()
    (store / "warden.db").write_bytes(b"someone's data")
    done = subprocess.run(
        [_warden(), "demo", "--no-serve", "--port", str(_free_port()), "--json", "out.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "DEMO FAILED at step 1" in done.stdout
    assert "not a demo store" in done.stdout
    assert "--reset" in done.stdout
    assert (store / "warden.db").read_bytes() == b"someone's data"
    assert json.loads((tmp_path / "out.json").read_text())["facts"]["failed"]["step"] == "1"
