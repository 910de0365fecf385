"""README claims checked against the code: what a plain install needs, and where models load."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("api", "governance", "lineage", "monitors", "reports", "retrain")


def _project() -> dict[str, object]:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = document["project"]
    return project


def _imported_by_shipped_code() -> set[str]:
    found: set[str] = set()
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found


def _names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {str(r).split("[")[0].split(">")[0].split("=")[0].split("<")[0] for r in requirements}


def test_fairlearn_is_a_test_reference_only_and_weasyprint_the_pdf_extra() -> None:
    project = _project()
    runtime = _names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    assert "fairlearn" not in _imported_by_shipped_code()  # monitors.fairness counts with numpy
    assert "fairlearn" not in runtime
    assert "fairlearn" in _names(extras["dev"])
    assert "weasyprint" not in runtime
    assert _names(extras["pdf"]) == {"weasyprint"}


def _callers(name: str) -> set[str]:
    found: set[str] = set()
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = (
                        func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    )
                    if called == name:
                        found.add(path.relative_to(ROOT).as_posix())
    return found


def test_models_load_only_through_the_hash_check_in_the_worker_or_embedded_serving() -> None:
    # "Models are code": one loader checks the hash; the worker and the embedded serving
    # endpoint (predict, and the going-live routes warming it) are the only places building it.
    assert _callers("load_verified") == {"retrain/deployers.py"}
    assert _callers("VerifiedModelLoader") == {
        "api/worker_process.py",
        "api/routes/deployments_serving.py",
    }
    assert _callers("load_model") == {"retrain/mlflow_registry.py"}


def test_the_package_metadata_builds_without_setuptools_deprecations() -> None:
    # A table licence and an explicit package list missing new subpackages each printed pages
    # of warnings on `pip install -e .` (and the list left api.dashboard out of the wheel).
    document = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = document["project"]
    assert project["license"] == "Apache-2.0"
    assert all((ROOT / name).is_file() for name in project["license-files"])
    find = document["tool"]["setuptools"]["packages"]["find"]
    assert find["namespaces"] is True
    assert set(document["tool"]["setuptools"]["packages"]) == {"find"}  # discovered, not listed
    for package in SHIPPED:
        assert any(package.startswith(p.rstrip("*")) for p in find["include"])


def test_every_warden_command_the_readme_shows_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = {
        tuple(words.split())
        for words in re.findall(r"`warden ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", readme)
    }
    assert ("approvals", "approve") in shown  # the tour's client-mode commands are parsed
    runner = CliRunner()
    for words in sorted(shown):
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"`warden {' '.join(words)}` in the README: {result.output}"
