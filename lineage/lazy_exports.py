"""Package re-exports loaded on first use (PEP 562), so importing a package costs nothing.

A package ``__init__`` imports its public names under ``TYPE_CHECKING`` (for mypy and readers)
and hands the same names, grouped by home module, to :func:`lazy_exports`; a process imports a
home module only when it first asks for one of its names. Importing ``monitors.models`` thus
no longer loads pandas and scipy through the package's statistics, and ``warden up`` starts
without them. ``tests/test_package_exports.py`` checks that both lists agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package`` serving ``homes``' names.

    Args:
        package: The package's ``__name__``.
        homes: Home module → the public names the package re-exports from it.
    """
    home_of = {name: module for module, names in homes.items() for name in names}
    namespace = vars(importlib.import_module(package))

    def get_attribute(name: str) -> Any:
        home = home_of.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def list_names() -> list[str]:
        return sorted({*namespace, *home_of})

    return get_attribute, list_names
