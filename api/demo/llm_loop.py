"""Step 8: traffic shifts, embedding drift finds it, refusals roll ``production`` back, budget.

The assistant answers ordinary Banking77 traffic under v1 (the monitors' reference window),
v2 goes live, then the traffic shifts to :data:`LLM_SHIFT`. Two monitors over the traces —
``embedding_drift`` of the questions and ``text_descriptors`` with a refusal-rate ceiling — run
on request; a policy rolls the ``production`` prompt back to v1 when the refusal rate alerts; a
daily budget on the deployment warns once; the audit chain verifies.
"""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from typing import Any

from api.demo.assistant import SupportAssistant
from api.demo.banking import (
    CARD_LOSS,
    Query,
    find_banking_data,
    ordinary_traffic,
    read_queries,
    shifted_traffic,
)
from api.demo.context import Demo
from api.demo.llm_prompts import llm_base, promote_prompt
from api.demo.options import LLM_DEPLOYMENT, LLM_PROJECT, LLM_SHIFT, PROMPT, DemoFailed
from api.demo.output import format_number, format_outcomes, format_verify

__all__ = ["TRAFFIC", "step_llm_loop"]

TRAFFIC = 150
"""Questions per window: embeddings run at ~80 texts/s on one core, so 2 x 150 take seconds."""
SURGE = 0.5
"""The share of card-loss questions in the shifted window (about 2 % in ordinary traffic)."""
REFUSAL_CEILING = 0.2
"""The refusal rate above which the text-descriptor monitor alerts."""


def _send(demo: Demo, assistant: SupportAssistant, queries: list[Query], what: str) -> None:
    empty = sum(1 for q in queries if not assistant.answer(q.text))
    if not assistant.flush():
        raise DemoFailed("8", f"the {what} traces were not exported to Warden within a minute")
    if empty == len(queries):
        raise DemoFailed("8", f"the LLM endpoint answered none of the {what} questions")


def _policy(demo: Demo) -> str:
    admin = demo.admin
    assert admin is not None
    document = {
        "rules": [
            {
                "name": "rollback-on-refusals",
                "scope": {"deployment": LLM_DEPLOYMENT},
                "when": {
                    "monitor": "text_descriptors",
                    "metric": "refusal_rate",
                    "status": "alert",
                },
                "consecutive_runs": 1,
                "cooldown_seconds": 3600,
                "actions": [{"type": "rollback", "mode": "perform"}],
            }
        ]
    }
    policy = demo.api.call(
        "POST",
        f"{llm_base(demo)}/policies",
        admin,
        json={"name": "refusal-rollback", "document": document, "reason": "demo LLM loop"},
    )
    if policy.get("active_version") is None:
        demo.api.call(
            "POST",
            f"{llm_base(demo)}/policies/{policy['id']}/versions/1:activate",
            admin,
            json={},
        )
    return str(policy["id"])


def _monitors(demo: Demo, reference: tuple[datetime, datetime], since: float) -> dict[str, str]:
    """Create the two monitors (run on request) over the window since v2 went live."""
    scientist = demo.person("data_scientist")
    window = f"last:{math.ceil(time.time() - since) + 1}s"
    bounds = {
        "reference_start": reference[0].isoformat(),
        "reference_end": reference[1].isoformat(),
    }
    specs = {
        "embedding_drift": {
            "kind": "embedding_drift",
            "options": {"fields": ["question"], "sample": TRAFFIC, **bounds},
        },
        "text_descriptors": {
            "kind": "text_descriptors",
            "thresholds": {"refusal_rate": REFUSAL_CEILING},
            "options": {"languages": ["en"], **bounds},
        },
    }
    made = {}
    for kind, spec in specs.items():
        created = demo.api.call(
            "POST",
            f"{llm_base(demo)}/monitors",
            scientist,
            json={
                "name": f"support-{kind.replace('_', '-')}",
                "deployment_id": LLM_DEPLOYMENT,
                "spec": spec,
                "window": window,
            },
        )
        made[kind] = str(created["id"])
        demo.api.call("POST", f"{llm_base(demo)}/monitors/{created['id']}/runs", scientist)
    return made


def _finished_run(demo: Demo, monitor_id: str, what: str) -> dict[str, Any]:
    scientist = demo.person("data_scientist")

    def finished() -> dict[str, Any] | None:
        runs = demo.api.call("GET", f"{llm_base(demo)}/monitors/{monitor_id}/runs", scientist)
        done = [r for r in runs if r.get("state") in {"succeeded", "failed"}]
        return dict(done[0]) if done else None

    run = demo.wait_for("8", what, finished)
    if run["state"] != "succeeded":
        raise DemoFailed("8", f"{what}: the run failed: {run.get('error')}")
    return run


def _alerting(run: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    findings = (run.get("summary") or {}).get("findings") or []
    return [f for f in findings if f.get("metric") == metric and f.get("status") == "alert"]


def _budget(demo: Demo) -> dict[str, Any]:
    """A daily budget on the deployment, set so today's spend is 60 % of it: one warning."""
    admin = demo.admin
    assert admin is not None
    base = llm_base(demo)
    created = demo.api.call(
        "POST",
        f"{base}/budgets",
        admin,
        json={
            "name": "support-bot-daily",
            "scope": {"deployment": LLM_DEPLOYMENT},
            "period": "daily",
            "limit_usd": 1000.0,
            "warn_at": [0.5],
        },
    )
    spend = float(created["spend_usd"])
    if spend <= 0:
        raise DemoFailed("8", "no spend was priced for the assistant's calls")
    demo.api.call(
        "PATCH",
        f"{base}/budgets/{created['id']}",
        admin,
        json={"limit_usd": max(spend / 0.6, 1e-6)},
    )

    def warned() -> dict[str, Any] | None:
        now = demo.api.call("GET", f"{base}/budgets/{created['id']}", admin)
        return dict(now) if 0.5 in (now.get("reached") or []) else None

    return demo.wait_for("8", "the budget's warning", warned)


def step_llm_loop(demo: Demo) -> None:
    """Run the assistant's traffic, the shift, the monitors, the rollback and the budget."""
    scientist, auditor = demo.person("data_scientist"), demo.person("auditor")
    base = llm_base(demo)
    facts = demo.facts["llm"]
    key = os.environ.get(demo.options.llm_api_key_env) if demo.options.llm_api_key_env else None
    assert demo.llm_app is not None
    assistant = SupportAssistant(
        warden_url=demo.base_url,
        project=LLM_PROJECT,
        deployment=LLM_DEPLOYMENT,
        api_key=demo.llm_app.key,
        llm_base_url=facts["llm_base_url"],
        llm_api_key=key,
    )
    try:
        queries = read_queries(find_banking_data() / "train.csv.gz")
        started = datetime.now(UTC)
        _send(demo, assistant, ordinary_traffic(queries, TRAFFIC, seed=7), "ordinary")
        reference = (started, datetime.now(UTC))
        demo.console.say(
            f"      {TRAFFIC} ordinary Banking77 questions answered under v1, traced over OTLP"
        )
        time.sleep(2.0)  # keeps the reference window and v2's window apart
        promote_prompt(demo, "2")
        v2_live = time.time()
        shifted = shifted_traffic(queries, TRAFFIC, share=SURGE, seed=11)
        _send(demo, assistant, shifted, "shifted")
        surge = sum(1 for q in shifted if q.intent in CARD_LOSS)
        demo.console.say(
            f"      v2 live; traffic shifts to {LLM_SHIFT} ({surge} of {TRAFFIC}); answered "
            f"by version: {dict(sorted(assistant.versions.items()))}"
        )
        policy_id = _policy(demo)
        monitors = _monitors(demo, reference, v2_live)
        drift = _finished_run(demo, monitors["embedding_drift"], "the embedding-drift run")
        views = [
            f
            for f in (drift.get("summary") or {}).get("findings") or []
            if f.get("status") == "alert"
        ]
        if not views:
            raise DemoFailed("8", f"embedding drift did not find the shift: {drift.get('summary')}")
        demo.console.say(
            "      embedding drift of the questions: "
            + ", ".join(f"{f['metric']} {format_number(f['value'])}" for f in views)
        )
        text = _finished_run(demo, monitors["text_descriptors"], "the text-descriptor run")
        refusals = _alerting(text, "refusal_rate")
        if not refusals:
            raise DemoFailed("8", f"the refusal rate did not alert: {text.get('summary')}")
        demo.console.say(
            f"      refusal rate {format_number(refusals[0]['value'])} (ceiling "
            f"{REFUSAL_CEILING}) in run {text['id']}"
        )

        def decided() -> dict[str, Any] | None:
            rows = demo.api.call("GET", f"{base}/policies/{policy_id}/decisions", scientist)
            fired = [r for r in rows if r.get("status") == "fire"]
            return fired[0] if fired else None

        decision = demo.wait_for("8", "the refusal-rollback policy to fire", decided, timeout=120)
        outcomes = decision.get("outcomes") or []
        demo.console.say(f"      policy decision {decision['id']}: {format_outcomes(outcomes)}")
        if any(o.get("outcome") != "done" for o in outcomes):
            raise DemoFailed("8", f"the rollback failed: {outcomes}")
        live = demo.api.call("GET", f"{base}/prompts/{PROMPT}@production", scientist)
        if str(live.get("version")) != "1":
            raise DemoFailed("8", f"production is {PROMPT} v{live.get('version')}, not v1")
        before = dict(assistant.versions)
        assistant.answer(shifted[0].text)
        assistant.flush()
        answered_by = next(v for v, n in assistant.versions.items() if n > before.get(v, 0))
        demo.console.say(
            f"      {PROMPT}@production is v1 again; the assistant's next answer came from "
            f"v{answered_by} (its PromptClient saw the new ETag)"
        )
    finally:
        assistant.close()
    budget = _budget(demo)
    demo.console.say(
        f"      budget support-bot-daily: spend ${budget['spend_usd']:.6f} of "
        f"${budget['limit_usd']:.6f} today; the 50 % warning fired once"
    )
    verify = demo.api.call("GET", "/api/v1/audit/verify", auditor)
    if not verify.get("intact"):
        raise DemoFailed("8", f"the audit chain does not verify: {verify}")
    demo.facts["audit_verify"] = verify
    facts.update(
        {
            "traffic": TRAFFIC,
            "surge": surge,
            "monitors": monitors,
            "drift_run_id": drift["id"],
            "drift_alerts": [f["metric"] for f in views],
            "descriptor_run_id": text["id"],
            "refusal_rate": refusals[0]["value"],
            "policy_id": policy_id,
            "decision_id": decision["id"],
            "budget_id": budget["id"],
            "answered_after_rollback_by": answered_by,
        }
    )
    url = demo.base_url
    demo.summary.links.update(
        {
            "llm_traces": f"{url}/p/{LLM_PROJECT}/traces",
            "llm_evaluation": f"{url}/p/{LLM_PROJECT}/evaluation",
            "llm_monitors": f"{url}/p/{LLM_PROJECT}/monitors",
            "llm_drift_run": f"{url}/p/{LLM_PROJECT}/monitor-runs/{drift['id']}",
            "llm_policies": f"{url}/p/{LLM_PROJECT}/policies",
            "llm_audit": f"{url}/p/{LLM_PROJECT}/audit",
        }
    )
    demo.console.say(f"      audit chain verifies: {format_verify(verify)}")
