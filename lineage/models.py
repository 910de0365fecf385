"""The lineage tables: datasets, jobs, runs, model versions, deployments, edges and raw events.

Two levels of lineage live side by side:

* the *design* level, as Marquez draws it: a job reads and writes datasets
  (edges ``job_input`` dataset → job and ``job_output`` job → dataset);
* the *instance* level that provenance needs: a run consumed and produced dataset versions
  (``run_input`` dataset version → run, ``run_output`` run → dataset version), a run trained a
  model version (``run_model``) and a deployment serves a model version (``serves``).

Every edge points downstream, in the direction data flows, so "upstream" always means following
edges backwards. Edges name their ends by id and kind rather than by foreign key, which keeps one
uniform table to traverse; only the services in this package write them, after resolving both
ends in the same project. Every row belongs to one project.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from lineage.tables import AwareDateTime, Record

__all__ = [
    "Dataset",
    "DatasetVersion",
    "Deployment",
    "Edge",
    "EdgeKind",
    "Job",
    "LineageEvent",
    "ModelVersion",
    "PromptVersion",
    "Run",
    "RunState",
    "VersionKind",
]

_PROJECT_FK = "lineage_project.id"


class RunState(StrEnum):
    """The OpenLineage run states; ``OTHER`` events never change a run's state."""

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


class VersionKind(StrEnum):
    """What a model version's artifact is: model files, or a prompt (template + model config)."""

    MODEL = "model"
    PROMPT = "prompt"


class EdgeKind(StrEnum):
    """The kinds of edge; each kind fixes what its ends are.

    ``job_input`` dataset → job, ``job_output`` job → dataset, ``run_input`` dataset version →
    run, ``run_output`` run → dataset version, ``run_model`` run → model version (it trained),
    ``run_evaluates`` run → model version (it judged: an evaluation run and its prompt version),
    ``serves`` model version → deployment.
    """

    JOB_INPUT = "job_input"
    JOB_OUTPUT = "job_output"
    RUN_INPUT = "run_input"
    RUN_OUTPUT = "run_output"
    RUN_MODEL = "run_model"
    RUN_EVALUATES = "run_evaluates"
    SERVES = "serves"


class Dataset(Record, table=True):
    """A named dataset (OpenLineage namespace + name), whatever its versions."""

    __tablename__ = "lineage_dataset"
    __table_args__ = (sa.UniqueConstraint("project_id", "namespace", "name"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    namespace: str = Field(sa_column=sa.Column(sa.String(1024), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(1024), nullable=False))
    facets: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class DatasetVersion(Record, table=True):
    """One content version of a dataset: digest, schema, row count and where it lives."""

    __tablename__ = "lineage_dataset_version"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "version"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    dataset_id: uuid.UUID = Field(foreign_key="lineage_dataset.id", index=True)
    version: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    schema_fields: list[dict[str, Any]] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )
    row_count: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    uri: str | None = Field(default=None, sa_column=sa.Column(sa.String(2048)))


class Job(Record, table=True):
    """A named job (OpenLineage namespace + name): the recipe that runs execute."""

    __tablename__ = "lineage_job"
    __table_args__ = (sa.UniqueConstraint("project_id", "namespace", "name"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    namespace: str = Field(sa_column=sa.Column(sa.String(1024), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(1024), nullable=False))
    facets: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class Run(Record, table=True):
    """One execution of a job, keyed by the client's OpenLineage ``runId``."""

    __tablename__ = "lineage_run"
    __table_args__ = (sa.UniqueConstraint("project_id", "run_id"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    job_id: uuid.UUID = Field(foreign_key="lineage_job.id", index=True)
    run_id: uuid.UUID = Field(nullable=False)
    state: RunState = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    state_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(AwareDateTime()))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(AwareDateTime()))
    facets: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class ModelVersion(Record, table=True):
    """A registered model version: what artifact it is, what trained it, how it scored.

    ``artifact_sha256`` is checked before Warden ever loads the artifact (model files are code).
    An ``external`` version is one Warden never loads (a vendor's score, a model served
    elsewhere): any URI or none, no hash; it is monitored from its logged records alone.
    ``feature_schema`` maps each input column to its type, for inference logging;
    ``context_schema`` maps each context column (not a model input) to its type and role
    (``sensitive`` or ``slice``); ``output_schema`` maps each output (from a model signature).
    ``registered_by`` is the principal id that registered it (separation of duties needs it).
    A ``prompt`` version (``kind``) is an LLM application's version: its artifact is the
    :class:`PromptVersion` row (``prompts:/name/version`` in MLflow), its hash the content hash.
    """

    __tablename__ = "lineage_model_version"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "name", "version"),
        # The order lists page in (lineage.model_versions): no sort, however deep the page.
        sa.Index("ix_lineage_model_version_page", "project_id", "name", "created_at", "id"),
    )

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    name: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    source_run_id: uuid.UUID | None = Field(default=None, foreign_key="lineage_run.id")
    artifact_uri: str | None = Field(default=None, sa_column=sa.Column(sa.String(2048)))
    artifact_sha256: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    external: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    feature_schema: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    context_schema: dict[str, dict[str, str]] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False, server_default="{}")
    )
    output_schema: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False, server_default="{}")
    )
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    registered_by: uuid.UUID | None = Field(default=None)
    kind: VersionKind = Field(
        default=VersionKind.MODEL,
        sa_column=sa.Column(sa.String(16), nullable=False, server_default=VersionKind.MODEL.value),
    )


class PromptVersion(Record, table=True):
    """A prompt version's artifact: its template and the model configuration it was written for.

    Immutable once written. ``content_sha256`` is the SHA-256 of the canonical JSON of template
    and model configuration (:func:`lineage.prompts.content_hash`); the model version row carries
    the same value as ``artifact_sha256``, so the going-live path checks one hash for both kinds.
    ``template`` is a string (``text``) or a list of ``{role, content}`` messages (``chat``).
    """

    __tablename__ = "lineage_prompt_version"

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    model_version_id: uuid.UUID = Field(
        foreign_key="lineage_model_version.id", unique=True, nullable=False
    )
    template_type: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    template: Any = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    variables: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    model_settings: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    commit_message: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    content_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))


class Deployment(Record, table=True):
    """A model version live under a deployment name in an environment, from/until a time.

    At most one row per (project, name, environment) has ``live_until`` unset (a partial unique
    index enforces it): recording a new deployment ends the previous one at the moment the new
    one goes live.
    """

    __tablename__ = "lineage_deployment"
    __table_args__ = (
        sa.Index(
            "ix_lineage_deployment_live_slot",
            "project_id",
            "name",
            "environment",
            unique=True,
            sqlite_where=sa.text("live_until IS NULL"),
            postgresql_where=sa.text("live_until IS NULL"),
        ),
        # The order the history pages in (lineage.deployments): no sort, however long.
        sa.Index("ix_lineage_deployment_page", "project_id", "live_from", "id"),
    )

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    name: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    environment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    model_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id", index=True)
    live_from: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    live_until: datetime | None = Field(default=None, sa_column=sa.Column(AwareDateTime()))
    recorded_by: uuid.UUID | None = Field(default=None)
    imported: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false()),
        description="Imported from another system's history (its times are that system's).",
    )


class Edge(Record, table=True):
    """A directed, downstream link between two lineage nodes of the same project."""

    __tablename__ = "lineage_edge"
    __table_args__ = (sa.UniqueConstraint("project_id", "kind", "source_id", "target_id"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    kind: EdgeKind = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    source_id: uuid.UUID = Field(index=True)
    target_id: uuid.UUID = Field(index=True)


class LineageEvent(Record, table=True):
    """An OpenLineage event exactly as received, kept for audit and replay.

    ``digest`` is the SHA-256 of the event's canonical JSON: replaying an event, however it was
    serialised, finds the stored one and changes nothing.
    """

    __tablename__ = "lineage_event"
    __table_args__ = (sa.UniqueConstraint("project_id", "digest"),)

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True)
    event_kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    event_time: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    body: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
