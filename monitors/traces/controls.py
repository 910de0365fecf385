"""What a project decides about its traces: prices, redaction rules, retention (tables).

* ``monitors_trace_price`` — the versioned price table: one row per (provider, model pattern)
  and validity interval ``[valid_from, valid_to)``; prices in integer nano-dollars per million
  tokens, so fractions of a cent per token stay exact.
* ``monitors_trace_redaction`` — one row per project that changed its redaction rules: the
  replacement mode, the detectors switched off, custom patterns, and the hash key sealed by the
  caller's box (never stored in clear).
* ``monitors_trace_retention`` — one row per project that changed its lifetimes: content and
  metrics days, the legal hold, and when the last purge ran.

A project without a row has the defaults (every detector on, typed tokens; the lifetimes in
:mod:`monitors.traces.retention`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from lineage.tables import AwareDateTime, Record, utcnow

__all__ = ["PriceEntry", "RedactionSettings", "RetentionSettings"]

_PROJECT_FK = "lineage_project.id"


def _nano() -> Any:
    return Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class PriceEntry(Record, table=True):
    """One price of a provider's model (glob pattern) over a validity interval."""

    __tablename__ = "monitors_trace_price"
    __table_args__ = (
        sa.Index("ix_monitors_trace_price_lookup", "project_id", "provider", "valid_from"),
    )

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, nullable=False)
    provider: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    model_pattern: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    input_nano_usd_per_mtok: int = _nano()
    output_nano_usd_per_mtok: int = _nano()
    cached_input_nano_usd_per_mtok: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True)
    )
    valid_from: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    valid_to: datetime | None = Field(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True)
    )
    created_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


class RedactionSettings(Record, table=True):
    """A project's redaction rules; ``sealed_key`` is the hash key, sealed, never in clear."""

    __tablename__ = "monitors_trace_redaction"

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, unique=True, nullable=False)
    mode: str = Field(default="token", sa_column=sa.Column(sa.String(8), nullable=False))
    disabled: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    patterns: list[dict[str, str]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    sealed_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(AwareDateTime(), nullable=False)
    )


class RetentionSettings(Record, table=True):
    """A project's content and metrics lifetimes, its legal hold, and its last purge."""

    __tablename__ = "monitors_trace_retention"

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, unique=True, nullable=False)
    content_days: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    metrics_days: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    legal_hold: bool = Field(default=False, sa_column=sa.Column(sa.Boolean(), nullable=False))
    legal_hold_reason: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    last_purge_at: datetime | None = Field(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(AwareDateTime(), nullable=False)
    )
