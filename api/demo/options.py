"""What ``warden demo`` is asked to do, the names it gives what it creates, and how a step fails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ALSO",
    "DEMO_MARKER",
    "DEPLOYMENT",
    "LLM_DEPLOYMENT",
    "LLM_PEOPLE",
    "LLM_PROJECT",
    "LLM_SHIFT",
    "MODEL",
    "MONITOR_KINDS",
    "PEOPLE",
    "PROJECT",
    "PROMPT",
    "RETRAIN_PIPELINE",
    "SHIFT",
    "TRAIN_PIPELINE",
    "DemoFailed",
    "DemoOptions",
]

DEMO_MARKER = "demo.json"
"""The file inside a data directory that marks it as a demo store (safe to wipe and rebuild)."""

PROJECT = "census"
MODEL = "income"
DEPLOYMENT = "income-api"
TRAIN_PIPELINE = "income-train"
RETRAIN_PIPELINE = "income-retrain"
PEOPLE = {"dana": "data_scientist", "avery": "approver", "alex": "auditor"}
# Dana also holds the approver role, so the demo shows separation of duties refusing her own
# request by the rule itself, not by a missing permission.
ALSO = {"dana": ("approver",)}
MONITOR_KINDS = ("drift", "quality", "performance", "fairness", "explanations")
SHIFT = "married people aged 40 and over"
LLM_PROJECT = "banking"
PROMPT = "support"
LLM_DEPLOYMENT = "support-bot"
LLM_SHIFT = "a surge of lost, stolen or compromised card questions"
LLM_PEOPLE = {"dana": ("data_scientist", "approver"), "avery": ("approver",), "alex": ("auditor",)}
"""The LLM project's grants: the same people, the same separation of duties."""


class DemoFailed(Exception):
    """A step of the loop did not happen (in time): the demo stops and says which and why."""

    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"step {step} failed: {why}")
        self.step = step
        self.why = why


@dataclass(frozen=True)
class DemoOptions:
    """What ``warden demo`` was asked to do.

    Attributes:
        root: The directory the store goes under (``<root>/.warden``).
        host: The interface the server binds.
        port: The port the server binds.
        reset: Wipe an existing store that is not a demo store.
        serve: Keep serving the dashboard after the loop until Ctrl-C.
        json_path: Where to write the machine-readable summary, if anywhere.
        step_timeout: The longest any single wait may take, in seconds.
        llm_base_url: An OpenAI-compatible server for the LLM loop; ``None``: the local
            stand-in (no LLM weights can be downloaded here).
        llm_model: The model name to ask that server for.
        llm_api_key_env: The environment variable holding that server's key, if it needs one.
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 8000
    reset: bool = False
    serve: bool = True
    json_path: Path | None = None
    step_timeout: float = 600.0
    llm_base_url: str | None = None
    llm_model: str = "stand-in"
    llm_api_key_env: str | None = None
