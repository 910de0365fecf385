"""``monitors`` owns the finding type: ``Finding`` and ``RunSummary`` are defined once.

import-linter keeps the layers; this keeps a consumer from growing its own copy of the contract
(which is how a finding once took eight shapes between a monitor and an incident).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "governance", "lineage", "monitors", "reports", "retrain")
OWNED = {"Finding", "RunSummary"}


def _definitions() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {name: set() for name in OWNED}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.ClassDef):
                    names = [node.name]
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [t.id for t in targets if isinstance(t, ast.Name)]
                for name in OWNED.intersection(names):
                    where[name].add(path.relative_to(ROOT).as_posix())
    return where


def test_finding_and_run_summary_are_defined_only_in_monitors_findings() -> None:
    assert _definitions() == {name: {"monitors/findings.py"} for name in OWNED}
