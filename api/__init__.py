"""The composition root: the HTTP app, the CLI, process start-up and migrations.

``create_app`` and ``Settings`` are loaded on first use (PEP 562), so ``warden --help`` and the
CLI's client mode, which import ``api.cli``, do not pay for the whole server at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import create_app
    from api.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    """Import ``create_app`` or ``Settings`` when first asked for."""
    if name == "create_app":
        from api.app import create_app

        return create_app
    if name == "Settings":
        from api.settings import Settings

        return Settings
    raise AttributeError(f"module 'api' has no attribute {name!r}")
