"""Packages whose re-exports load on first use list the same names for mypy and at run time."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "governance", "lineage", "monitors", "reports", "retrain")


def _lazy_inits() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (REPO / package).rglob("__init__.py")
        if "lazy_exports(" in path.read_text(encoding="utf-8")
    )


def _declared(path: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]], list[str]]:
    """Return (TYPE_CHECKING imports, names handed to lazy_exports, ``__all__``) of an init."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typed: set[tuple[str, str]] = set()
    lazy: set[tuple[str, str]] = set()
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imported in node.body:
                assert isinstance(imported, ast.ImportFrom), path
                assert imported.module, path
                typed |= {(imported.module, alias.name) for alias in imported.names}
            call = node.orelse[0].value  # type: ignore[attr-defined]
            homes = ast.literal_eval(call.args[1])
            lazy = {(module, name) for module, names in homes.items() for name in names}
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            exported = ast.literal_eval(node.value)
    return typed, lazy, exported


def _module_name(path: Path) -> str:
    return ".".join(path.parent.relative_to(REPO).parts)


def test_the_big_packages_load_their_names_lazily() -> None:
    names = {_module_name(path) for path in _lazy_inits()}
    assert {"monitors", "monitors.drift", "monitors.traces", "retrain"} <= names


@pytest.mark.parametrize("path", _lazy_inits(), ids=_module_name)
def test_typed_and_lazy_names_agree_and_resolve_to_their_home(path: Path) -> None:
    typed, lazy, exported = _declared(path)
    assert typed == lazy
    assert sorted(exported) == sorted(name for _, name in lazy)  # ruff (RUF022) keeps the order
    package = importlib.import_module(_module_name(path))
    for home, name in sorted(lazy):
        assert getattr(package, name) is getattr(importlib.import_module(home), name)
    assert set(exported) <= set(dir(package))
    # Importing a submodule sets the package attribute of its name: a lazy name must not be one.
    assert not set(exported) & {sub.name for sub in pkgutil.iter_modules([str(path.parent)])}
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        package.not_a_name  # noqa: B018
