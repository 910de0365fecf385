"""Step 6: the model card (with its hand-filled fields), the audit report, the audit verdict.

Routes are looked up in the OpenAPI document, so the demo fails saying which report this
Warden lacks rather than with a bare 404.
"""

from __future__ import annotations

from api.demo.context import Demo
from api.demo.options import MODEL, PROJECT, SHIFT, DemoFailed
from api.demo.output import format_verify

__all__ = ["find_route", "step_reports"]


def find_route(demo: Demo, step: str, what: str, *needles: str) -> str:
    """Return the GET route whose path contains every needle, or fail the step."""
    if demo.admin is None:
        raise DemoFailed(step, "there is no administrator to read the API description as")
    paths = demo.api.client.get("/openapi.json", headers=demo.admin.headers).json()["paths"]
    for path, methods in paths.items():
        if "get" in methods and all(n in path for n in needles):
            return str(path)
    raise DemoFailed(step, f"this Warden has no route for the {what} (looked for {needles})")


def step_reports(demo: Demo) -> None:
    """Fill the model card, fetch it and the audit report as files, verify the chain."""
    scientist, auditor = demo.person("data_scientist"), demo.person("auditor")
    version = demo.facts["challenger"]["version"]
    card_route = find_route(demo, "6", "model card", "/reports/models/{name}/{version}")
    card_path = (
        card_route.replace("{project}", PROJECT)
        .replace("{name}", MODEL)
        .replace("{version}", version)
    )
    demo.api.call(
        "PUT",
        f"{card_path}/card",
        scientist,
        json={
            "intended_use": "Demo: estimate whether a census respondent earns over $50K.",
            "out_of_scope_use": "Any decision about a real person.",
            "limitations": f"Retrained after production traffic shifted to {SHIFT}.",
            "ethical_considerations": "Selection rates differ by sex and race; see fairness.",
        },
    )
    reports = demo.data_dir / "reports" / "demo"
    reports.mkdir(parents=True, exist_ok=True)
    card = demo.api.call("GET", card_path, auditor, params={"format": "json"})
    card_file = reports / f"model-card-{MODEL}-v{version}.html"
    card_file.write_text(demo.api.call("GET", card_path, auditor, params={"format": "html"}))
    report_route = find_route(demo, "6", "project audit report", "/reports/project")
    report_path = report_route.replace("{project}", PROJECT)
    period = {"from": demo.summary.started_at}
    report = demo.api.call("GET", report_path, auditor, params={**period, "format": "json"})
    report_file = reports / f"audit-report-{PROJECT}.html"
    report_file.write_text(
        demo.api.call("GET", report_path, auditor, params={**period, "format": "html"})
    )
    verify = demo.api.call("GET", "/api/v1/audit/verify", auditor)
    if not verify.get("intact"):
        raise DemoFailed("6", f"the audit chain does not verify: {verify}")
    demo.facts["audit_verify"] = verify
    demo.facts["model_card_keys"] = sorted(card) if isinstance(card, dict) else []
    demo.facts["audit_report_keys"] = sorted(report) if isinstance(report, dict) else []
    login = demo.api.client.get("/login")
    if login.status_code != 200:
        raise DemoFailed("6", f"the dashboard does not answer at /login ({login.status_code})")
    url = demo.base_url
    demo.summary.links = {
        "dashboard": f"{url}/",
        "project": f"{url}/p/{PROJECT}",
        "model": f"{url}/p/{PROJECT}/models/{MODEL}",
        "monitors": f"{url}/p/{PROJECT}/monitors",
        "incidents": f"{url}/p/{PROJECT}/incidents",
        "approvals": f"{url}/p/{PROJECT}/approvals",
        "audit": f"{url}/p/{PROJECT}/audit",
        "model_card": f"{url}{card_path}?format=html",
        "audit_report": f"{url}{report_path}?from={demo.summary.started_at}",
        "model_card_file": str(card_file),
        "audit_report_file": str(report_file),
        "api_docs": f"{url}/docs",
    }
    demo.console.say(f"      model card of v{version}: {card_file}")
    demo.console.say(f"      project audit report: {report_file}")
    demo.console.say(f"      audit chain verifies: {format_verify(verify)}")
