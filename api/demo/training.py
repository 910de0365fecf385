"""Step 2: train, evaluate and promote the income model, and the helpers step 5 reuses.

A pipeline run trains on the worker; its evaluation scores it (fairness by sex and race); the
data scientist asks for promotion, fails to approve her own request, and the approver approves.
"""

from __future__ import annotations

from typing import Any

from api.demo.client import Person
from api.demo.context import Demo
from api.demo.options import DEPLOYMENT, MODEL, TRAIN_PIPELINE, DemoFailed
from api.demo.output import fairness_metric, format_metric, format_number

__all__ = [
    "define_pipeline",
    "promote",
    "report_evaluation",
    "run_pipeline",
    "step_train",
    "wait_evaluation",
    "wait_pipeline",
]


def run_pipeline(demo: Demo, step: str, pipeline: str, reason: str, who: Person) -> dict[str, Any]:
    """Request a run of ``pipeline`` as ``who`` and wait until it succeeded."""
    run = demo.api.call(
        "POST", f"{demo.base}/pipelines/{pipeline}/runs", who, json={"reason": reason}
    )
    return wait_pipeline(demo, step, run["id"], who)


def wait_pipeline(demo: Demo, step: str, run_id: str, who: Person) -> dict[str, Any]:
    """Wait until a pipeline run finished on the worker; fail the step unless it succeeded."""

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = demo.api.call("GET", f"{demo.base}/pipeline-runs/{run_id}", who)
        return run if run["state"] in {"succeeded", "failed", "cancelled"} else None

    done = demo.wait_for(step, f"pipeline run {run_id} to finish on the worker", finished)
    if done["state"] != "succeeded":
        raise DemoFailed(
            step,
            f"pipeline run {run_id} {done['state']}: {done.get('error')}\n"
            f"{done.get('log_tail', '')[-2000:]}",
        )
    return done


def wait_evaluation(demo: Demo, step: str, version: str, who: Person) -> dict[str, Any]:
    """Wait for the evaluation of a model version and return it."""

    def stored() -> dict[str, Any] | None:
        rows = demo.api.call(
            "GET", f"{demo.base}/models/{MODEL}/versions/{version}/evaluations", who
        )
        return rows[0] if rows else None

    return demo.wait_for(step, f"the evaluation of version {version}", stored, timeout=120)


def promote(demo: Demo, version: str, reason: str) -> dict[str, Any]:
    """Ask for promotion, show the rule refusing the asker (an approver too), approve, promote."""
    scientist, approver = demo.person("data_scientist"), demo.person("approver")
    asked = demo.api.call(
        "POST",
        f"{demo.base}/models/{MODEL}/versions/{version}/promotion-requests",
        scientist,
        json={"reason": reason},
    )
    own = demo.api.call(
        "POST",
        f"{demo.base}/approvals/{asked['approval_id']}/approve",
        scientist,
        json={"reason": "my own model"},
        expect=(403,),
    )
    demo.console.say(
        f"      {scientist.name} holds the approver role, yet the rule refuses her own request: "
        f"{own['detail']}"
    )
    demo.api.call(
        "POST",
        f"{demo.base}/approvals/{asked['approval_id']}/approve",
        approver,
        json={"reason": f"reviewed the evaluation of version {version}"},
    )
    promoted: dict[str, Any] = demo.api.call(
        "POST",
        f"{demo.base}/models/{MODEL}/versions/{version}/promote",
        scientist,
        json={"deployment": DEPLOYMENT, "environment": "production", "reason": reason},
    )
    demo.console.say(
        f"      {approver.name} approved; version {version} is live in {DEPLOYMENT} "
        f"(approval {asked['approval_id']})"
    )
    return promoted


def step_train(demo: Demo) -> None:
    """Define the training pipeline, run it, evaluate the version and make it champion."""
    scientist = demo.person("data_scientist")
    spec = {
        "name": TRAIN_PIPELINE,
        "model_name": MODEL,
        "description": "Income classifier on UCI Adult",
        "steps": [{"name": "train", "entrypoint": "api.demo.adult:train"}],
        "parameters": {"train_path": str(demo.adult / "adult.data.gz"), "max_iter": 100},
        "evaluation": {
            "holdout_uri": str(demo.adult / "adult.test.gz"),
            "reader": "api.demo.adult:read_adult",
            "target": "income",
            "sensitive_features": ["sex", "race"],
            "max_rows": 5000,
        },
    }
    define_pipeline(demo, spec, scientist)
    run = run_pipeline(demo, "2", TRAIN_PIPELINE, "first income model", scientist)
    version = str(run["model_version"])
    demo.console.say(
        f"      pipeline run {run['id']} registered {MODEL} v{version}; metrics "
        + ", ".join(f"{k} {format_metric(v)}" for k, v in sorted(run["metrics"].items()))
    )
    evaluation = wait_evaluation(demo, "2", version, scientist)
    report_evaluation(demo, evaluation)
    promoted = promote(demo, version, "first income model")
    demo.facts["champion"] = {
        "version": version,
        "pipeline_run_id": run["id"],
        "promotion_id": promoted["id"],
    }
    deployments = demo.api.call("GET", f"{demo.base}/deployments", scientist)
    live = next(d for d in deployments if d["name"] == DEPLOYMENT and d.get("live_until") is None)
    demo.facts["deployment_id"] = live["id"]


def define_pipeline(demo: Demo, spec: dict[str, Any], who: Person) -> None:
    """Create a pipeline from its spec as ``who``."""
    demo.api.call("POST", f"{demo.base}/pipelines", who, json=spec)


def report_evaluation(demo: Demo, evaluation: dict[str, Any]) -> None:
    """Print an evaluation's size, accuracy and demographic parity gaps."""
    performance = evaluation["performance"]
    candidate = performance.get("candidate", performance)
    accuracy = candidate.get("accuracy")
    demo.console.say(
        f"      evaluated on {evaluation['rows']} held-out rows, fairness by "
        f"{' and '.join(evaluation['sensitive_features'])}"
        + (f"; accuracy {format_number(accuracy)}" if accuracy is not None else "")
    )
    fairness = evaluation.get("fairness") or {}
    for feature in evaluation["sensitive_features"]:
        gap = fairness_metric(fairness, feature, "demographic_parity_difference")
        if gap is not None:
            demo.console.say(f"      demographic parity difference by {feature}: {gap}")
