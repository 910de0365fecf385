"""Warden's settings, read from ``WARDEN_*`` environment variables (and a ``.env`` file).

Only the composition root builds a :class:`Settings`; everything below ``api`` receives the
values it needs as arguments, so a test can build an app with its own settings and nothing is
read at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of one Warden process (API, scheduler or worker)."""

    model_config = SettingsConfigDict(
        env_prefix="WARDEN_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path(".warden"),
        description="Artifact store: inference logs, baselines, reports, keys, local MLflow.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file inside the data directory.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; defaults to a SQLite store in the data dir.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        description="Largest request body accepted, after decompression.",
    )

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to ``<data_dir>/warden.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'warden.db').resolve()}"

    def resolved_mlflow_uri(self) -> str:
        """Return the MLflow URI, defaulting to ``<data_dir>/mlflow.db``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"
