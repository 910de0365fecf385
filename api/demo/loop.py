"""Step 5: the monitors find the shift, the policy opens an incident and retrains, v2 goes live.

The retraining pipeline trains on the champion's training data plus the labelled traffic
exported from Warden's inference log; the challenger is evaluated against the champion,
approved and promoted, and a rollback policy is set to guard it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.demo.adult import FEATURES
from api.demo.context import Demo
from api.demo.options import DEPLOYMENT, MODEL, RETRAIN_PIPELINE, DemoFailed
from api.demo.output import format_number, format_outcomes, format_versus
from api.demo.traffic import first_row, read_adult_file, record_dataset
from api.demo.training import (
    define_pipeline,
    promote,
    report_evaluation,
    wait_evaluation,
    wait_pipeline,
)

__all__ = [
    "export_recent_labelled",
    "install_policies",
    "install_rollback_policy",
    "step_loop",
]


def export_recent_labelled(demo: Demo) -> str:
    """Export the labelled traffic from Warden's inference log as a dataset version."""
    from api.demo.processes import demo_settings
    from lineage.models import Deployment
    from lineage.store import session_scope
    from monitors.inferences import read_window

    assert demo.engine is not None
    with session_scope(demo.engine) as session:
        deployment = session.get(Deployment, uuid.UUID(demo.facts["deployment_id"]))
        assert deployment is not None
        window, _ = read_window(
            session=session,
            store=demo_settings(demo).artifact_store(),
            deployment=deployment,
            start=datetime.now(UTC) - timedelta(hours=1),
            end=None,
        )
    labelled = window[window["label"].notna()].copy()
    labelled["income"] = labelled["label"].astype(int)
    frame = labelled[[*FEATURES, "income"]]
    path = demo.data_dir / "exports" / "recent-labelled-traffic.csv"
    frame.to_csv(path, index=False)
    demo.facts["retrain_rows"] = len(frame)
    return record_dataset(
        demo,
        job="inference-log-export",
        name="income-api-labelled-traffic",
        path=path,
        inputs=[f"warden://deployments/{demo.facts['deployment_id']}/inferences"],
        rows=len(frame),
    )


def install_policies(demo: Demo) -> None:
    """Define the retraining pipeline and the drift policy that runs it."""
    scientist, admin = demo.person("data_scientist"), demo.admin
    assert admin is not None
    recent = export_recent_labelled(demo)
    train_versions = demo.api.call(
        "GET",
        f"{demo.base}/datasets/versions",
        scientist,
        params={"namespace": "file", "name": "adult-reference"},
    )
    spec = {
        "name": RETRAIN_PIPELINE,
        "model_name": MODEL,
        "description": "Retrain on the champion's training data plus recent labelled traffic",
        "steps": [{"name": "train", "entrypoint": "api.demo.adult:train"}],
        "parameters": {"max_iter": 100},
        "training_data": {"dataset_version_ids": [train_versions[0]["id"], recent]},
        "evaluation": {
            "holdout_uri": str(demo.adult / "adult.test.gz"),
            "reader": "api.demo.adult:read_adult",
            "target": "income",
            "sensitive_features": ["sex", "race"],
            "max_rows": 5000,
        },
    }
    define_pipeline(demo, spec, scientist)
    demo.console.say(
        f"      {RETRAIN_PIPELINE}: the training data plus {demo.facts['retrain_rows']} "
        "labelled production rows exported from the inference log"
    )
    document = {
        "rules": [
            {
                "name": "retrain-on-drift",
                "scope": {"model": MODEL},
                "when": {
                    "monitor": "drift",
                    "metric": "drift_share",
                    "op": ">=",
                    "threshold": 0.2,
                },
                "consecutive_runs": 1,
                "cooldown_seconds": 3600,
                "actions": [
                    {"type": "open_incident"},
                    {"type": "retrain", "pipeline": RETRAIN_PIPELINE},
                ],
            }
        ]
    }
    policy = demo.api.call(
        "POST",
        f"{demo.base}/policies",
        admin,
        json={"name": "drift-retrain", "document": document, "reason": "demo loop"},
    )
    demo.facts["drift_policy_id"] = policy["id"]
    if policy.get("active_version") is None:
        demo.api.call(
            "POST", f"{demo.base}/policies/{policy['id']}/versions/1:activate", admin, json={}
        )


def step_loop(demo: Demo) -> None:
    """Wait for drift, the decision, the incident and the webhook; promote the retrained version."""
    scientist, auditor = demo.person("data_scientist"), demo.person("auditor")
    install_policies(demo)
    monitors = demo.facts["monitors"]

    def drift_found() -> dict[str, Any] | None:
        runs = demo.api.call("GET", f"{demo.base}/monitors/{monitors['drift']}/runs", scientist)
        for run in runs:
            summary = run.get("summary") or {}
            if run.get("state") == "succeeded" and summary.get("status") == "alert":
                return dict(run)
        return None

    run = demo.wait_for("5", "the drift monitor to find the shift", drift_found)
    summary = run["summary"]
    drifted = [
        f["scope"].removeprefix("column:")
        for f in summary.get("findings", [])
        if f.get("status") in {"warn", "alert"} and str(f.get("scope", "")).startswith("column:")
    ]
    demo.console.say(
        f"      drift run {run['id']}: drift share {format_number(summary.get('drift_share'))}; "
        f"drifted columns: {', '.join(drifted) or '-'}"
    )
    demo.facts["drift_run_id"] = run["id"]

    def decided() -> dict[str, Any] | None:
        rows = demo.api.call(
            "GET",
            f"{demo.base}/policies/{demo.facts['drift_policy_id']}/decisions",
            scientist,
        )
        fired = [r for r in rows if r.get("status") == "fire"]
        return fired[0] if fired else None

    decision = demo.wait_for("5", "the drift-retrain policy to fire", decided, timeout=180)
    demo.facts["decision_id"] = decision["id"]
    outcomes = decision.get("outcomes") or []
    demo.console.say(f"      policy decision {decision['id']}: {format_outcomes(outcomes)}")
    failed = [o for o in outcomes if o.get("outcome") != "done"]
    if failed:
        raise DemoFailed("5", f"policy actions failed: {failed}")

    attached = {i for o in outcomes for i in o.get("incident_ids") or []}

    def incident() -> dict[str, Any] | None:
        rows = demo.api.call("GET", f"{demo.base}/incidents", auditor)
        opened = [r for r in rows if r["id"] in attached]
        return opened[0] if opened else None

    opened = demo.wait_for("5", "the policy's incident", incident, timeout=120)
    demo.facts["incident_id"] = opened["id"]
    demo.console.say(
        f"      {opened['severity']} incident {opened['id']} of the drift monitor, which the "
        f"policy attached to (alert rule {opened['rule_name']!r}, source {opened['source_id']})"
    )

    def heard() -> list[dict[str, Any]] | None:
        return demo.receiver.received() or None

    events = demo.wait_for("5", "the webhook receiver to hear of it", heard, timeout=120)
    demo.facts["webhook_events"] = [e["event"].get("type") for e in events]
    demo.console.say(
        f"      webhook received {events[0]['event'].get('type')} "
        f"(signed: {bool(events[0]['signature'])})"
    )

    run_id = next(o["pipeline_run_id"] for o in outcomes if o.get("type") == "retrain")
    retrained = wait_pipeline(demo, "5", run_id, scientist)
    version = str(retrained["model_version"])
    demo.console.say(f"      retraining run {run_id} registered {MODEL} v{version}")
    evaluation = wait_evaluation(demo, "5", version, scientist)
    report_evaluation(demo, evaluation)
    demo.console.say(f"      challenger v{version} vs champion: {format_versus(evaluation)}")
    promoted = promote(demo, version, "retrained after drift (policy drift-retrain)")
    demo.facts["challenger"] = {
        "version": version,
        "pipeline_run_id": run_id,
        "promotion_id": promoted["id"],
        "evaluation_id": evaluation["id"],
    }
    answer = demo.api.call(
        "POST",
        f"{demo.base}/deployments/{DEPLOYMENT}/predict",
        scientist,
        json={"rows": [first_row(read_adult_file(demo, "adult.test.gz"))]},
    )
    if str(answer["model_version"]) != version:
        raise DemoFailed("5", f"the deployment still serves v{answer['model_version']}")
    demo.console.say(f"      {DEPLOYMENT} now answers with v{version}")
    install_rollback_policy(demo)


def install_rollback_policy(demo: Demo) -> None:
    """Set the policy that asks approvers to roll back after three accuracy alerts."""
    admin = demo.admin
    assert admin is not None
    document = {
        "rules": [
            {
                "name": "rollback-on-accuracy-drop",
                "scope": {"deployment": DEPLOYMENT},
                "when": {"monitor": "performance", "metric": "accuracy", "status": "alert"},
                "consecutive_runs": 3,
                "cooldown_seconds": 3600,
                "actions": [
                    {"type": "open_incident"},
                    {"type": "rollback", "mode": "request"},
                ],
            }
        ]
    }
    policy = demo.api.call(
        "POST",
        f"{demo.base}/policies",
        admin,
        json={"name": "rollback-guard", "document": document, "reason": "demo loop"},
    )
    demo.facts["rollback_policy_id"] = policy["id"]
    demo.console.say(
        "      rollback-guard stands ready: 3 performance alerts in a row ask the approvers "
        "to roll back"
    )
