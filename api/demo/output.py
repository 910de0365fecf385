"""What the demo tells its user: numbered steps on the console, the summary, and its JSON file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.demo.options import LLM_SHIFT, PROJECT, SHIFT, DemoFailed

__all__ = [
    "Console",
    "Summary",
    "fairness_metric",
    "format_metric",
    "format_number",
    "format_outcomes",
    "format_verify",
    "format_versus",
    "print_summary",
    "summary_dict",
    "write_json",
]


@dataclass
class Summary:
    """What the demo did: who it created, how long each step took, the facts and the links."""

    started_at: str
    base_url: str
    data_dir: str
    project: str = PROJECT
    people: dict[str, dict[str, str]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


class Console:
    """Print progress, and time each numbered step into the summary."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        """Print one line at once (the demo's output is read while it runs)."""
        print(text, flush=True)

    @contextmanager
    def step(self, number: str, title: str, total: int) -> Iterator[None]:
        """Announce a step, time it, and turn an unexpected error into :class:`DemoFailed`."""
        self.say(f"\n[{number}/{total}] {title}")
        began = time.monotonic()
        try:
            yield
        except DemoFailed:
            raise
        except Exception as error:
            raise DemoFailed(number, f"{type(error).__name__}: {error}") from error
        took = time.monotonic() - began
        self.summary.steps.append({"step": number, "title": title, "seconds": round(took, 1)})
        self.say(f"      done in {took:.1f} s (total {time.monotonic() - self.started:.0f} s)")


def summary_dict(summary: Summary) -> dict[str, Any]:
    """Return the summary as the JSON document ``--json`` writes."""
    return {
        "started_at": summary.started_at,
        "base_url": summary.base_url,
        "data_dir": summary.data_dir,
        "project": summary.project,
        "people": summary.people,
        "steps": summary.steps,
        "facts": summary.facts,
        "links": summary.links,
    }


def write_json(summary: Summary, path: Path | None) -> None:
    """Write the machine-readable summary to ``path``, if the user asked for one."""
    if path is not None:
        path.write_text(json.dumps(summary_dict(summary), indent=2))


def print_summary(summary: Summary) -> None:
    """Print what happened and where to look."""
    facts = summary.facts
    print("\nWhat happened", flush=True)
    print(f"  v{facts['champion']['version']} trained, evaluated and approved as champion")
    print(f"  traffic shifted to {SHIFT}; drift found in run {facts['drift_run_id']}")
    print(f"  policy decision {facts['decision_id']} opened incident {facts['incident_id']}")
    print(f"  the webhook receiver got {', '.join(map(str, facts['webhook_events']))}")
    print(f"  v{facts['challenger']['version']} retrained on recent labelled data, approved, live")
    print("  rollback-guard policy stands ready")
    llm = facts.get("llm")
    if llm:
        where = "the local stand-in (a fake, not a model)" if llm["stand_in"] else llm["model"]
        print(f"  LLM loop on Banking77, answered by {where}:")
        print(
            "    support v1 approved and live; golden-set evaluation; v2 compared, approved, live"
        )
        print(f"    traffic shifted to {LLM_SHIFT}; embedding drift found it")
        print(
            f"    v2's refusal rate {format_number(llm['refusal_rate'])}: policy decision "
            f"{llm['decision_id']} rolled production back to v1"
        )
        print("    the daily budget's warning fired once")
    print("  the audit chain verifies")
    print("\nOpen")
    for name, url in summary.links.items():
        print(f"  {name:17} {url}")
    print(
        "  sign in as alex (auditor), avery (approver) or dana (data scientist, also an approver)",
        flush=True,
    )


def format_metric(value: float) -> str:
    """Word a training metric: counts as whole numbers, scores with three decimals."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def format_number(value: Any) -> str:
    """Word a number with three decimals (anything else as it is)."""
    return f"{value:.3f}" if isinstance(value, int | float) else str(value)


def fairness_metric(data: Any, feature: str, metric: str) -> str | None:
    """Return the candidate's fairness metric for one sensitive feature, if present."""
    try:
        return format_number(data["candidate"][feature]["metrics"][metric])
    except (KeyError, TypeError):
        return None


def format_versus(evaluation: dict[str, Any]) -> str:
    """Word a challenger's metric differences against the champion."""
    differences = evaluation.get("performance", {}).get("difference")
    if isinstance(differences, dict):
        flat = {k: v for k, v in differences.items() if isinstance(v, int | float)}
        return ", ".join(f"{k} {v:+.3f}" for k, v in sorted(flat.items())) or "no change"
    return "no champion to compare with"


def format_outcomes(rows: list[dict[str, Any]]) -> str:
    """Word a policy decision's action outcomes."""
    return "; ".join(f"{o.get('type')} {o.get('outcome')}" for o in rows) or "no actions"


def format_verify(verify: dict[str, Any]) -> str:
    """Word the audit chain's verification."""
    keys = ("intact", "entries", "head_seq", "checkpoints", "checkpoints_verified")
    return ", ".join(f"{k} {verify[k]}" for k in keys if k in verify)
