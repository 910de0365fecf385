"""Run the demo's six steps in order; stop at the first that does not happen, saying why."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from api.demo.audit_reports import step_reports
from api.demo.context import Demo
from api.demo.llm_loop import step_llm_loop
from api.demo.llm_prompts import step_prompts
from api.demo.loop import step_loop
from api.demo.monitoring import step_monitors
from api.demo.options import LLM_SHIFT, SHIFT, DemoFailed, DemoOptions
from api.demo.output import print_summary, write_json
from api.demo.people import step_people
from api.demo.processes import prepare_store, shutdown, start_processes
from api.demo.traffic import step_traffic
from api.demo.training import step_train

__all__ = ["run"]

_STEPS: tuple[tuple[str, str, Callable[[Demo], None]], ...] = (
    ("1", "fresh store, administrator and people", step_people),
    ("2", "train, evaluate and deploy the income model", step_train),
    ("3", "baseline, monitors, alerting and the webhook receiver", step_monitors),
    ("4", f"production traffic, then a shift to {SHIFT}", step_traffic),
    ("5", "monitors find the shift; policy → incident → retrain → promote", step_loop),
    ("6", "model card, audit report and audit verification", step_reports),
    (
        "7",
        "LLM: a banking assistant's prompt v1 live, golden-set evaluation, v2 approved",
        step_prompts,
    ),
    ("8", f"LLM: traffic shifts to {LLM_SHIFT}; drift, refusals, rollback, budget", step_llm_loop),
)


def _run(demo: Demo) -> int:
    print(
        "Warden demo: the whole loop on UCI Adult, then an LLM loop on Banking77, store in "
        f"{demo.data_dir}",
        flush=True,
    )
    try:
        prepare_store(demo)
        start_processes(demo)
        for number, title, action in _STEPS:
            demo.api.step = number
            with demo.console.step(number, title, len(_STEPS)):
                action(demo)
    except DemoFailed as failure:
        demo.summary.facts["failed"] = {"step": failure.step, "why": failure.why}
        write_json(demo.summary, demo.options.json_path)
        print(f"\nDEMO FAILED at step {failure.step}: {failure.why}", flush=True)
        shutdown(demo)
        return 1
    except BaseException:
        shutdown(demo)
        raise
    write_json(demo.summary, demo.options.json_path)
    print_summary(demo.summary)
    if demo.options.serve:
        print(f"\nServing the dashboard at {demo.base_url} — press Ctrl-C to stop.", flush=True)
        try:
            while any(t.is_alive() for t in demo.threads):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    shutdown(demo)
    return 0


def run(options: DemoOptions) -> int:
    """Run the demo loop; return the process exit code (0 when every step happened)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return _run(Demo(options))
