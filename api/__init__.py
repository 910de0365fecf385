"""The composition root: the HTTP app, the CLI, process start-up and migrations."""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
