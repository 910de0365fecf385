"""Model versions: register one (artifact, hash, training run, scores, input schema), find them.

A model version is the unit that monitors watch, policies judge and deployments serve. Its
``artifact_sha256`` is what Warden checks before ever loading the artifact, and its
``source_run_id`` ties it to the OpenLineage run that trained it, which is where its provenance
starts. The training run must have been reported (``POST /api/v1/lineage``) before the version is
registered, so that provenance is never silently cut.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.edges import link
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.models import EdgeKind, ModelVersion, Run, VersionKind
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page, newest_first_page

__all__ = [
    "MODEL_NAME_PATTERN",
    "VERSION_PATTERN",
    "ContextColumn",
    "ContextRole",
    "FeatureType",
    "ModelSummary",
    "ModelVersionCreate",
    "SchemaRevision",
    "get_model_version",
    "get_model_version_by_id",
    "get_model_versions_by_id",
    "list_model_versions",
    "model_summaries",
    "page_model_versions",
    "register_model_version",
    "revise_schema",
]

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(MODEL_NAME_PATTERN)


class FeatureType(StrEnum):
    """The column types an inference log may declare for a model's inputs."""

    BOOLEAN = "boolean"
    CATEGORY = "category"
    DATETIME = "datetime"
    FLOAT = "float"
    INTEGER = "integer"
    STRING = "string"


class ContextRole(StrEnum):
    """Why a record carries a context column the model never sees."""

    SENSITIVE = "sensitive"
    SLICE = "slice"


class ContextColumn(BaseModel):
    """A context column of a model version: its type and its role (fairness or slicing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FeatureType = FeatureType.CATEGORY
    role: ContextRole


ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class ModelVersionCreate(BaseModel):
    """What a client says about a new model version (the name comes from the URL).

    Attributes:
        version: The version label, e.g. the MLflow registry version; the next integer if unset.
        source_run_id: The OpenLineage ``runId`` of the training run, already reported.
        external: Warden never loads this version (a vendor's model, one served elsewhere):
            the URI is optional and there is no hash; it is monitored from its logged records.
        artifact_uri: Where the artifact lives (``models:/…``, ``s3://…``, a path).
        artifact_sha256: SHA-256 of the artifact, lowercase hex; checked before loading.
        parameters: Training parameters.
        metrics: Evaluation metrics.
        feature_schema: Input column → type, used to validate inference logs.
        context_schema: Context column (not a model input: a sensitive attribute, a slice) →
            its type and role.
        output_schema: Output name → type (an MLflow signature's outputs).
        description: Free text for people.
    """

    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(pattern=VERSION_PATTERN)] | None = None
    source_run_id: uuid.UUID | None = None
    external: bool = False
    artifact_uri: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, validate_default=True
    )
    artifact_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, validate_default=True
    )
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    feature_schema: dict[ColumnName, FeatureType] = Field(default_factory=dict)
    context_schema: dict[ColumnName, ContextColumn] = Field(default_factory=dict)
    output_schema: dict[ColumnName, FeatureType] = Field(default_factory=dict)
    description: Annotated[str, Field(max_length=10_000)] = ""

    @field_validator("artifact_uri")
    @classmethod
    def _uri(cls, uri: str | None, info: ValidationInfo) -> str | None:
        """Require a URI of a version Warden may load."""
        if uri is None and not info.data.get("external", False):
            raise ValueError(
                "artifact_uri is required; for a model Warden does not host (served elsewhere, "
                "a vendor's score), set external to true"
            )
        return uri

    @field_validator("artifact_sha256")
    @classmethod
    def _hash(cls, digest: str | None, info: ValidationInfo) -> str | None:
        """Require the hash of a version Warden may load; refuse one on an external version."""
        external = info.data.get("external", False)
        if external and digest is not None:
            raise ValueError(
                "an external version has no artifact hash (Warden never loads it); "
                "leave artifact_sha256 out, or set external to false"
            )
        if digest is None and not external:
            raise ValueError(
                "artifact_sha256 is required; for a model Warden does not host, set external "
                "to true"
            )
        return digest

    @field_validator("context_schema")
    @classmethod
    def _apart(
        cls, schema: dict[str, ContextColumn], info: ValidationInfo
    ) -> dict[str, ContextColumn]:
        """Refuse a context column that is also a feature: the model never sees context."""
        both = sorted(set(schema) & set(info.data.get("feature_schema", {})))
        if both:
            raise ValueError(
                f"{both} are both features and context columns; a context column is not a "
                "model input"
            )
        return schema


def _context_schema(spec: ModelVersionCreate) -> dict[str, dict[str, str]]:
    """Return the stored form of a version's context schema."""
    return {
        name: {"type": str(column.type), "role": str(column.role)}
        for name, column in spec.context_schema.items()
    }


def _next_version(*, session: Session, project_id: uuid.UUID, name: str) -> str:
    versions = session.exec(
        select(ModelVersion.version).where(
            ModelVersion.project_id == project_id, ModelVersion.name == name
        )
    ).all()
    numbers = [int(v) for v in versions if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def register_model_version(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str,
    spec: ModelVersionCreate,
    registered_by: uuid.UUID | None = None,
) -> ModelVersion:
    """Register a model version and link it to the run that trained it.

    Args:
        session: The caller's session; nothing is committed here.
        project_id: The project the model belongs to.
        name: The registered model name (a slug: letters, digits, ``.``, ``_``, ``-``).
        spec: What the client says about the version.
        registered_by: The principal registering it, kept for separation of duties.

    Raises:
        InvalidInput: The name is not a slug, or the training run is unknown in this project.
        Conflict: This name and version are registered already (or concurrently).
    """
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"model name {name!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    run: Run | None = None
    if spec.source_run_id is not None:
        run = session.exec(
            select(Run).where(Run.project_id == project_id, Run.run_id == spec.source_run_id)
        ).first()
        if run is None:
            raise InvalidInput(
                f"no run {spec.source_run_id} in this project; report the training run through "
                "POST /api/v1/lineage first, or leave source_run_id out",
                field="source_run_id",
            )
    prompt = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == name,
            ModelVersion.kind == VersionKind.PROMPT,
        )
    ).first()
    if prompt is not None:
        raise InvalidInput(
            f"{name!r} names a prompt in this project; register its versions under "
            f"…/prompts/{name}/versions, or choose another model name",
            field="name",
        )
    version = spec.version or _next_version(session=session, project_id=project_id, name=name)
    existing = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == name,
            ModelVersion.version == version,
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"model {name!r} version {version!r} is registered already; versions are immutable, "
            "register a new version",
            field="version",
        )
    model_version = ModelVersion(
        project_id=project_id,
        name=name,
        version=version,
        source_run_id=run.id if run else None,
        external=spec.external,
        artifact_uri=spec.artifact_uri,
        artifact_sha256=spec.artifact_sha256,
        parameters=dict(spec.parameters),
        metrics=dict(spec.metrics),
        feature_schema={column: str(kind) for column, kind in spec.feature_schema.items()},
        context_schema=_context_schema(spec),
        output_schema={name: str(kind) for name, kind in spec.output_schema.items()},
        description=spec.description,
        registered_by=registered_by,
    )
    try:
        with session.begin_nested():
            session.add(model_version)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"model {name!r} version {version!r} was registered by a concurrent request; "
            "list the versions and retry",
            field="version",
        ) from None
    if run is not None:
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.RUN_MODEL,
            source_id=run.id,
            target_id=model_version.id,
        )
        session.flush()
    return model_version


def get_model_version(
    *, session: Session, project_id: uuid.UUID, name: str, version: str
) -> ModelVersion:
    """Return the model version ``name``/``version`` of the project or raise :class:`NotFound`."""
    model_version = session.exec(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == name,
            ModelVersion.version == version,
        )
    ).first()
    if model_version is None:
        raise NotFound(
            f"no version {version!r} of model {name!r} in this project; "
            f"list them with GET …/models/{name}/versions"
        )
    return model_version


def get_model_version_by_id(
    *, session: Session, project_id: uuid.UUID, model_version_id: uuid.UUID
) -> ModelVersion:
    """Return a model version by id, only if it belongs to the project."""
    model_version = session.get(ModelVersion, model_version_id)
    if model_version is None or model_version.project_id != project_id:
        raise NotFound(f"no model version {model_version_id} in this project")
    return model_version


def list_model_versions(
    *, session: Session, project_id: uuid.UUID, name: str | None = None
) -> list[ModelVersion]:
    """Return the project's model versions (of one model when ``name`` is given), oldest first."""
    query = _versions_of(project_id, name).order_by(*(k.column for k in _VERSION_ORDER))
    return list(session.exec(query).all())


_VERSION_ORDER = (
    SortKey(col(ModelVersion.name)),
    SortKey(col(ModelVersion.created_at)),
    SortKey(col(ModelVersion.id)),
)


def _versions_of(project_id: uuid.UUID, name: str | None) -> Any:
    query = select(ModelVersion).where(ModelVersion.project_id == project_id)
    return query if name is None else query.where(ModelVersion.name == name)


def page_model_versions(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page[ModelVersion]:
    """Return a page of the project's model versions (of ``name``).

    By name, oldest first; or, with ``newest_first``, newest first whatever the name (what a
    reader compares or picks first).

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    query = _versions_of(project_id, name)
    if newest_first:
        return newest_first_page(
            session=session, query=query, record=ModelVersion, limit=limit, cursor=cursor
        )
    return keyset_page(
        session=session,
        query=query,
        keys=_VERSION_ORDER,
        key_of=lambda v: (v.name, v.created_at, v.id),
        limit=limit,
        cursor=cursor,
    )


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model of a project at a glance: how many versions, and the newest."""

    name: str
    versions: int
    latest: ModelVersion


def model_summaries(*, session: Session, project_id: uuid.UUID) -> list[ModelSummary]:
    """Return each model of the project with its version count and newest version, by name.

    Two queries whatever the number of versions (a count per name, then the newest rows).
    """
    counted = session.exec(
        select(ModelVersion.name, sa.func.count(), sa.func.max(col(ModelVersion.created_at)))
        .where(ModelVersion.project_id == project_id)
        .group_by(col(ModelVersion.name))
    ).all()
    if not counted:
        return []
    newest = session.exec(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id)
        .where(
            sa.tuple_(col(ModelVersion.name), col(ModelVersion.created_at)).in_(
                [(name, at) for name, _, at in counted]
            )
        )
        .order_by(col(ModelVersion.created_at), col(ModelVersion.id))
    ).all()
    latest = {version.name: version for version in newest}  # ties: the last by id wins
    return [
        ModelSummary(name=name, versions=int(count), latest=latest[name])
        for name, count, _ in sorted(counted)
    ]


def get_model_versions_by_id(
    *, session: Session, project_id: uuid.UUID, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, ModelVersion]:
    """Return the project's versions among ``ids`` by id, in one query (absent ones left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found = session.exec(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id)
        .where(col(ModelVersion.id).in_(wanted))
    ).all()
    return {version.id: version for version in found}


class SchemaRevision(BaseModel):
    """Schema a version lacked, given later (a version imported without an MLflow signature).

    Attributes:
        feature_schema: Input column → type; only for a version that has none yet.
        context_schema: Context columns to add; one declared already cannot change.
        output_schema: Output name → type; only for a version that has none yet.
    """

    model_config = ConfigDict(extra="forbid")

    feature_schema: dict[ColumnName, FeatureType] | None = None
    context_schema: dict[ColumnName, ContextColumn] | None = None
    output_schema: dict[ColumnName, FeatureType] | None = None


def revise_schema(
    *, session: Session, model_version: ModelVersion, revision: SchemaRevision
) -> ModelVersion:
    """Fill in what a version's schema lacks; never change what it declared.

    What a version declared is what its logs were checked against and its monitors judged, so
    a declared feature schema, output schema or context column never changes (register a new
    version instead); the caller audits the revision in the same transaction.

    Raises:
        InvalidInput: The revision is empty, or a context column is also a feature.
        Conflict: The revision would change something the version declared.
    """
    if revision.model_fields_set == set() or all(
        getattr(revision, name) is None for name in revision.model_fields_set
    ):
        raise InvalidInput(
            "nothing to revise: send feature_schema, context_schema or output_schema", field="body"
        )
    label = f"model {model_version.name!r} version {model_version.version!r}"
    if revision.feature_schema is not None:
        wanted = {name: str(kind) for name, kind in revision.feature_schema.items()}
        if model_version.feature_schema and model_version.feature_schema != wanted:
            raise Conflict(
                f"{label} declared its features already; a declared schema never changes, "
                "register a new version",
                field="feature_schema",
            )
        model_version.feature_schema = wanted
    if revision.output_schema is not None:
        wanted = {name: str(kind) for name, kind in revision.output_schema.items()}
        if model_version.output_schema and model_version.output_schema != wanted:
            raise Conflict(
                f"{label} declared its outputs already; register a new version",
                field="output_schema",
            )
        model_version.output_schema = wanted
    if revision.context_schema is not None:
        context = dict(model_version.context_schema)
        for name, column in revision.context_schema.items():
            stored = {"type": str(column.type), "role": str(column.role)}
            if name in context and context[name] != stored:
                raise Conflict(
                    f"{label} declared context column {name!r} already as {context[name]}; "
                    "a declared column never changes",
                    field=f"context_schema.{name}",
                )
            context[name] = stored
        model_version.context_schema = context
    both = sorted(set(model_version.feature_schema) & set(model_version.context_schema))
    if both:
        raise InvalidInput(
            f"{both} would be both features and context columns; a context column is not a "
            "model input",
            field="context_schema",
        )
    session.add(model_version)
    session.flush()
    return model_version
