"""The one audit rule, on the routes: an action is recorded through ``act_then_audit``.

A route may write only denials (``append_in_own_transaction``); a hand-written ``append`` after an
action is how an action and its record drift apart (see docs/audit.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import api.routes

ROUTES = Path(api.routes.__file__).parent


def _appends(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("governance"):
            found += [f"{path.name}:{node.lineno}" for a in node.names if a.name == "append"]
        if isinstance(node, ast.Attribute) and node.attr == "append":
            value = node.value
            if isinstance(value, ast.Name) and value.id in {"audit", "governance"}:
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_route_appends_an_action_by_hand() -> None:
    modules = sorted(ROUTES.glob("*.py"))
    assert len(modules) > 10
    offenders = [hit for path in modules for hit in _appends(path)]
    assert offenders == [], f"record actions with act_then_audit, not append: {offenders}"


def test_the_check_finds_a_hand_written_append(tmp_path: Path) -> None:
    route = tmp_path / "route.py"
    route.write_text("from governance.audit import append, act_then_audit\n", encoding="utf-8")
    assert _appends(route) == ["route.py:1"]
