"""Step 7: the banking assistant's prompt — v1 approved and live, a golden-set evaluation, v2.

A second project (``banking``) holds the LLM application, with the same people and the same
separation of duties as the tabular loop: Dana writes the prompt versions, Avery approves them.
The assistant's endpoint is the local stand-in unless ``--llm-base-url`` names a real server.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from api.demo.banking import (
    V1_SYSTEM,
    V2_SYSTEM,
    BankingStandIn,
    find_banking_data,
    golden_set,
    read_queries,
)
from api.demo.client import Person
from api.demo.context import Demo
from api.demo.options import LLM_DEPLOYMENT, LLM_PEOPLE, LLM_PROJECT, PROMPT, DemoFailed

__all__ = ["SCORERS", "llm_base", "step_prompts"]

SCORERS: list[dict[str, Any]] = [
    {"type": "refusal", "name": "no_refusal", "expect_refusal": False},
    {"type": "length", "name": "brief", "min_chars": 20, "max_chars": 400},
    {"type": "token_f1", "threshold": 0.3},
]
"""The golden set's scorers, all offline: answers, briefly, close to the advice expected."""
_PRICE = {"input_nano_usd_per_mtok": 150_000_000, "output_nano_usd_per_mtok": 600_000_000}
"""An illustrative price ($0.15 / $0.60 per million tokens in / out) so spend and budgets show."""


def llm_base(demo: Demo) -> str:
    """Return the LLM project's REST prefix."""
    return f"/api/v1/projects/{LLM_PROJECT}"


def _provider(demo: Demo) -> str:
    return "stand-in" if demo.options.llm_base_url is None else "openai-compatible"


def _version_body(demo: Demo, system: str, message: str) -> dict[str, Any]:
    return {
        "template": [
            {"role": "system", "content": system},
            {"role": "user", "content": "{{question}}"},
        ],
        "model": {
            "provider": _provider(demo),
            "name": demo.options.llm_model,
            "temperature": 0,
            "max_tokens": 200,
        },
        "commit_message": message,
        "variables": ["question"],
    }


def _check_instrumentation() -> None:
    """Fail step 7 up front when the application's libraries are not installed."""
    import importlib.util

    needed = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http", "warden_client")
    missing = []
    for name in needed:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise DemoFailed(
            "7",
            "the LLM loop's assistant needs opentelemetry-sdk, opentelemetry-exporter-otlp-proto-"
            "http and warden-client: pip install -e '.[dev]' -e client (make demo does)",
        )


def start_llm(demo: Demo) -> str:
    """Start the stand-in (or take the real server); say plainly which; return its base URL."""
    _check_instrumentation()
    if demo.options.llm_base_url is not None:
        demo.console.say(
            f"      LLM: {demo.options.llm_model} at {demo.options.llm_base_url} "
            "(an OpenAI-compatible server you named)"
        )
        return demo.options.llm_base_url.rstrip("/")
    queries = read_queries(find_banking_data() / "train.csv.gz") + read_queries(
        find_banking_data() / "test.csv.gz"
    )
    demo.llm = BankingStandIn(intents={q.text.lower(): q.intent for q in queries}).start()
    demo.console.say(
        "      LLM: no model weights can be downloaded on this machine, so the assistant talks to "
        f"a local STAND-IN at {demo.llm.base_url}: a fake OpenAI-compatible server with canned "
        "advice per Banking77 intent, not a model. Run 'warden demo --llm-base-url URL "
        "--llm-model NAME' to point the same loop at a real one (Ollama, vLLM, a hosted API)."
    )
    return str(demo.llm.base_url)


def _project(demo: Demo, base_url: str) -> None:
    """Create the project, its grants, the app's service account, allow-list and price."""
    admin = demo.admin
    assert admin is not None
    base = llm_base(demo)
    demo.api.call(
        "POST",
        "/api/v1/projects",
        admin,
        json={"name": LLM_PROJECT, "description": "Banking-support assistant on Banking77 (demo)"},
    )
    for name, roles in LLM_PEOPLE.items():
        for role in roles:
            demo.api.call(
                "POST",
                f"{base}/grants",
                admin,
                json={"principal_id": demo.people[name].id, "role": role},
            )
    app = demo.api.call(
        "POST", "/api/v1/principals", admin, json={"name": "support-bot-app", "kind": "service"}
    )
    key = demo.api.call(
        "POST", f"/api/v1/principals/{app['id']}/keys", admin, json={"label": "warden demo"}
    )["key"]
    demo.api.call(
        "POST", f"{base}/grants", admin, json={"principal_id": app["id"], "role": "data_scientist"}
    )
    demo.llm_app = Person("support-bot-app", "service", "", key, app["id"])
    host = urlsplit(base_url).hostname or "127.0.0.1"
    demo.api.call(
        "POST",
        f"{base}/outbound-allowlist",
        admin,
        json={"target": host, "note": "the demo's LLM endpoint"},
    )
    demo.api.call(
        "POST",
        f"{base}/llm/prices",
        admin,
        json={"provider": _provider(demo), "model_pattern": demo.options.llm_model, **_PRICE},
    )
    demo.console.say(
        f"      project {LLM_PROJECT}: dana writes prompts, avery approves, alex audits; the app "
        "exports traces as the service account support-bot-app"
    )


def _approve(demo: Demo, version: str, reason: str) -> str:
    """Dana asks for promotion of ``version``; Avery (not its author) approves it."""
    scientist, approver = demo.person("data_scientist"), demo.person("approver")
    base = llm_base(demo)
    asked = demo.api.call(
        "POST",
        f"{base}/prompts/{PROMPT}/versions/{version}/promotion-requests",
        scientist,
        json={"reason": reason},
    )
    approval_id = str(asked["approval_id"])
    demo.api.call(
        "POST",
        f"{base}/approvals/{approval_id}/approve",
        approver,
        json={"reason": "read the prompt and its evaluation"},
    )
    return approval_id


def promote_prompt(demo: Demo, version: str) -> None:
    """Dana makes the approved ``version`` live in the assistant's slot."""
    demo.api.call(
        "POST",
        f"{llm_base(demo)}/llm-deployments/{LLM_DEPLOYMENT}/promote",
        demo.person("data_scientist"),
        json={"version": version},
    )


def _evaluate(demo: Demo, version: str) -> dict[str, Any]:
    scientist = demo.person("data_scientist")
    base = llm_base(demo)
    run = demo.api.call(
        "POST",
        f"{base}/evaluation/runs",
        scientist,
        json={
            "dataset": "golden",
            "prompt": PROMPT,
            "prompt_version": version,
            "llm_deployment": LLM_DEPLOYMENT,
            "label": f"{PROMPT} v{version}",
            "scorers": SCORERS,
        },
    )

    def finished() -> dict[str, Any] | None:
        now = demo.api.call("GET", f"{base}/evaluation/runs/{run['id']}", scientist)
        return dict(now) if now.get("state") in {"succeeded", "partial", "failed"} else None

    done = demo.wait_for("7", f"the evaluation of v{version} on the golden set", finished)
    if done["state"] == "failed":
        raise DemoFailed("7", f"the evaluation of v{version} failed: {done.get('error')}")
    return done


def _figures(comparison: dict[str, Any], position: int) -> str:
    runs = comparison.get("runs") or []
    figures = (runs[position].get("figures") or {}) if position < len(runs) else {}
    parts = []
    for name, scorer in (figures.get("scorers") or {}).items():
        rate = scorer.get("pass_rate") if isinstance(scorer, dict) else None
        if isinstance(rate, int | float):
            parts.append(f"{name} {rate:.0%}")
    return ", ".join(parts) or "-"


def _pause_tabular_monitors(demo: Demo) -> None:
    """Pause the income monitors: their story is told, and the one worker is the LLM loop's now.

    Their 20-60 s schedules would otherwise keep the demo's single worker busy, and the LLM
    loop's evaluation and monitor runs would wait behind them (minutes on a loaded machine).
    """
    scientist = demo.person("data_scientist")
    for monitor_id in demo.facts.get("monitors", {}).values():
        demo.api.call("POST", f"{demo.base}/monitors/{monitor_id}/pause", scientist)
    if demo.facts.get("monitors"):
        demo.console.say(
            "      the income monitors are paused (resume them in the dashboard), so the one "
            "worker serves the LLM loop"
        )


def step_prompts(demo: Demo) -> None:
    """Project and app, v1 approved and live, both versions evaluated and compared, v2 approved."""
    scientist = demo.person("data_scientist")
    base = llm_base(demo)
    _pause_tabular_monitors(demo)
    base_url = start_llm(demo)
    _project(demo, base_url)
    demo.api.call(
        "POST",
        f"{base}/prompts/{PROMPT}/versions",
        scientist,
        json=_version_body(demo, V1_SYSTEM, "helpful answers pointing into the app"),
    )
    binding: dict[str, Any] = {
        "name": LLM_DEPLOYMENT,
        "prompt": PROMPT,
        "base_url": base_url,
        "model": demo.options.llm_model,
    }
    if demo.options.llm_api_key_env:
        binding["api_key_env"] = demo.options.llm_api_key_env
    demo.api.call("POST", f"{base}/llm-deployments", scientist, json=binding)
    v1_approval = _approve(demo, "1", "first version of the support assistant")
    promote_prompt(demo, "1")
    demo.console.say(f"      {PROMPT} v1 approved by avery, live in {LLM_DEPLOYMENT}")

    golden = golden_set(read_queries(find_banking_data() / "test.csv.gz"), per_intent=2)
    demo.api.call("POST", f"{base}/evaluation/datasets", scientist, json={"name": "golden"})
    demo.api.call(
        "POST", f"{base}/evaluation/datasets/golden/versions", scientist, json={"records": golden}
    )
    first = _evaluate(demo, "1")
    demo.api.call(
        "POST",
        f"{base}/prompts/{PROMPT}/versions",
        scientist,
        json=_version_body(
            demo, V2_SYSTEM, "one-sentence answers; card-loss questions go to the phone line"
        ),
    )
    second = _evaluate(demo, "2")
    comparison = demo.api.call(
        "GET",
        f"{base}/evaluation/comparison",
        scientist,
        params={"runs": f"{first['id']},{second['id']}"},
    )
    differing = len(comparison.get("differing") or [])
    demo.console.say(
        f"      golden set ({len(golden)} Banking77 questions, no card-loss ones): "
        f"v1 {_figures(comparison, 0)}; v2 {_figures(comparison, 1)}; "
        f"{differing} record(s) differ"
    )
    v2_approval = _approve(demo, "2", "shorter answers, same quality on the golden set")
    demo.console.say(
        "      v2 compared side by side with v1 and approved by avery (not its author)"
    )
    demo.facts["llm"] = {
        "project": LLM_PROJECT,
        "deployment": LLM_DEPLOYMENT,
        "stand_in": demo.options.llm_base_url is None,
        "llm_base_url": base_url,
        "model": demo.options.llm_model,
        "approvals": {"1": v1_approval, "2": v2_approval},
        "evaluation_runs": {"1": first["id"], "2": second["id"]},
        "golden_records": len(golden),
        "differing_records": differing,
    }
    if os.environ.get("WARDEN_DEMO_DEBUG"):
        demo.console.say(f"      comparison: {comparison}")
