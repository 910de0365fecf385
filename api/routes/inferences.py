"""Inference logs, labels and reference baselines over HTTP.

``{deployment_id}`` is the deployment's id or its name (the slot live in ``?environment=``,
default ``production``), as ``…/predict`` accepts it.

* ``POST …/deployments/{deployment_id}/inferences`` — a JSON batch of at most
  :data:`~monitors.inferences.MAX_BATCH` (10,000) records;
* ``POST …/deployments/{deployment_id}/inferences/upload`` — the same as a table file
  (multipart field ``file`` named ``*.parquet``, ``*.pq``, ``*.csv`` or ``*.csv.gz``, or a
  Parquet file as the body itself, ``Content-Type: application/vnd.apache.parquet``; columns
  ``request_id``, ``time``, ``prediction``, ``score`` and one per feature), for batch scoring
  jobs; a plain Parquet table is bounded by the ``table_max_*`` settings, not by ``MAX_BATCH``;
* ``POST …/deployments/{deployment_id}/labels`` — ground truth by request id, arriving later;
* ``POST …/deployments/{deployment_id}/inferences/{request_id}/explanation`` — queue the local
  explanation of one logged inference (202, ``Location`` the same URL; the model is loaded only
  in the worker), ``GET`` the same URL for its state and, once done, the contributions;
* ``POST …/baselines`` / ``GET …/baselines`` / ``GET …/baselines/{id}`` — reference baselines,
  built from a dataset version whose file is inside the data directory, or
  ``POST …/baselines/upload`` (multipart ``file`` plus form fields) to upload the reference;
  their ``deployment_id`` is an id or a name too (``?environment=`` as above).

Logging needs ``inference:write``; explanations need ``monitor:run`` to request (audited) and
``monitor:read`` to read; baselines need ``monitor:write`` to build and ``monitor:read``
to list. Each batch is audited once, with counts and the SHA-256 of the Parquet object stored,
never the data. A refused batch (structure not matching the model's ``feature_schema``, ``NaN``
or ``Infinity`` where JSON has only numbers and ``null``) leaves the store unchanged. Uploaded
tables are read within the ``table_max_*`` settings (a Parquet file judged by its footer before
anything is decoded), and a refused upload leaves no file behind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage.deployments import resolve_deployment
from lineage.errors import InvalidInput, PayloadTooLarge
from lineage.runtime.queue import RuntimeJob
from monitors.baseline.storage import (
    UPLOADED,
    BaselineCreate,
    BaselinePublic,
    StoredBaseline,
    create_baseline,
    create_uploaded_baseline,
    get_baseline,
    page_baselines,
)
from monitors.explanation_jobs import latest_explanation, queue_explanation
from monitors.inferences import (
    MAX_BATCH,
    InferenceRecord,
    IngestResult,
    Irregular,
    LabelRecord,
    deployment_of,
    inference_table,
    log_inference_table,
    log_inference_upload,
    log_inferences,
    log_labels,
    records_from_frame,
    refuse_non_finite,
)
from monitors.inferences.columnar import json_table, upload_table
from monitors.inferences.kept import kept_upload
from monitors.table_files import read_parquet_table, read_table, table_suffix

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ExplanationPublic",
    "InferenceBatchPublic",
    "InferencesCreate",
    "LabelsCreate",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["inferences"]
)

Logger = Annotated[Actor, Depends(require(Permission.INFERENCE_WRITE))]
Writer = Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))]
Runner = Annotated[Actor, Depends(require(Permission.MONITOR_RUN))]
_READ = [Depends(require(Permission.MONITOR_READ))]


class InferencesCreate(BaseModel):
    """A batch of inference records (at most 10,000)."""

    model_config = ConfigDict(extra="forbid")

    records: list[InferenceRecord]


class LabelsCreate(BaseModel):
    """A batch of labels by request id (at most 10,000)."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelRecord]


class InferenceBatchPublic(BaseModel):
    """What a logging call stored: the batch, records accepted, duplicates not counted again."""

    batch_id: uuid.UUID | None
    accepted: int
    duplicates: int
    max_batch: int = MAX_BATCH


DeploymentRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        description="The deployment's id, or its name (the slot live in `environment`).",
    ),
]
Environment = Annotated[
    str, Query(max_length=64, description="The slot's environment when the deployment is named.")
]


def _resolve(session: SessionDep, project_id: uuid.UUID, ref: str, environment: str) -> uuid.UUID:
    """Resolve a deployment addressed by id or by name, as ``…/predict`` accepts it."""
    return resolve_deployment(
        session=session, project_id=project_id, ref=ref, environment=environment
    ).id


def _answer(
    log: Callable[[], IngestResult],
    session: SessionDep,
    actor: Actor,
    action: str,
    deployment_id: uuid.UUID,
) -> InferenceBatchPublic:
    """Log a batch and record it (monitors may not import governance: the route does)."""
    result = act_then_audit(
        log,
        session=session,
        actor=actor,
        action=action,
        target=f"deployment:{deployment_id}",
        detail=lambda stored: {"after": stored.to_dict()},
    )
    return InferenceBatchPublic(
        batch_id=result.batch_id, accepted=result.accepted, duplicates=result.duplicates
    )


async def _raw_body(request: Request) -> bytes:
    """Return the request body unparsed: the batch is parsed once, by the route."""
    return await request.body()


PARQUET_TYPE = "application/vnd.apache.parquet"
"""The media type of a Parquet file sent as the body itself (IANA, 2024)."""


async def _parquet_body(request: Request) -> bytes | None:
    """Return the body when it is a Parquet file itself, else ``None`` (multipart).

    The body is the file: no multipart parse and no temporary file, which cost about 21 ms
    of CPU for a 12 MiB upload of 100,000 rows.
    """
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return await request.body() if kind == PARQUET_TYPE else None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON schema with its ``$defs`` references inlined (for ``openapi_extra``)."""
    definitions = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return walk(definitions[reference.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


def _records(raw: bytes) -> list[InferenceRecord]:
    """Judge a batch record by record: every refusal names its field, as FastAPI's would."""
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        reason = "nested too deeply"
        if isinstance(error, json.JSONDecodeError):
            reason = f"{error.msg} at character {error.pos}"
        elif isinstance(error, UnicodeDecodeError):
            reason = f"{error.reason} at byte {error.start}"
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ]
        ) from None
    try:
        body = InferencesCreate.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)],
            body=data,
        ) from None
    refuse_non_finite(body.records)
    return body.records


def _plain_batch(
    raw: bytes, schema: dict[str, str], context_schema: dict[str, dict[str, str]]
) -> pa.Table:
    """Return a plain batch as columns: parsed by Arrow from bytes, else by orjson, or raise."""
    if not context_schema:
        try:
            return json_table(raw, schema=schema)
        except Irregular:
            pass  # nulls to tell from absent values, context, NaN: the parsed objects decide
    return inference_table(
        orjson.loads(raw),
        schema=schema,
        context_schema=context_schema,
        booleans=b"true" in raw or b"false" in raw,
    )


@router.post(
    "/deployments/{deployment_id}/inferences",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inline(InferencesCreate.model_json_schema())}
            },
        }
    },
)
def post_inferences(
    deployment_id: DeploymentRef,
    raw: Annotated[bytes, Depends(_raw_body)],
    actor: Logger,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    environment: Environment = "production",
) -> InferenceBatchPublic:
    """Log a batch of inferences (``InferencesCreate``); re-sent request ids are counted once.

    A plain batch — the model's features and nothing else per record, plain ISO times — is
    checked and stored column by column (:mod:`monitors.inferences.columnar`; without context
    or null features, parsed from the bytes by Arrow); any other is judged record by record,
    which names the field of a refusal.
    """
    target = _resolve(session, project.id, deployment_id, environment)
    deployment, model_version = deployment_of(
        session=session, project_id=project.id, deployment_id=target
    )
    try:
        table = _plain_batch(raw, model_version.feature_schema, model_version.context_schema)
    except (orjson.JSONDecodeError, Irregular):
        records = _records(raw)
        return _answer(
            lambda: log_inferences(
                session=session,
                store=settings.artifact_store(),
                deployment=deployment,
                records=records,
            ),
            session,
            actor,
            "inference.log",
            target,
        )
    return _answer(
        lambda: log_inference_table(
            session=session, store=settings.artifact_store(), deployment=deployment, table=table
        ),
        session,
        actor,
        "inference.log",
        target,
    )


def _suffix(upload: UploadFile) -> str:
    return table_suffix(upload.filename or "", content_type=upload.content_type or "")


@router.post(
    "/deployments/{deployment_id}/inferences/upload",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PARQUET_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def upload_inferences(
    deployment_id: DeploymentRef,
    actor: Logger,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes | None, Depends(_parquet_body)],
    file: Annotated[
        UploadFile | None,
        File(description="CSV or Parquet: request_id, features… (or the body, as Parquet)"),
    ] = None,
    environment: Environment = "production",
) -> InferenceBatchPublic:
    """Log a batch scoring job's output from a Parquet or CSV file.

    The file comes as the multipart field ``file``, or, for Parquet, as the body itself
    (``Content-Type: application/vnd.apache.parquet``). A plain Parquet table (the model's
    features typed as its schema says, text request ids, times with a time zone) is checked
    and stored column by column, bounded only by the ``table_max_*`` settings — and a file
    that already is a partition (:mod:`monitors.inferences.kept`) is stored as it came; any other
    table, and CSV, is judged record by record, at most :data:`~monitors.inferences.MAX_BATCH`
    rows.
    """
    if body is not None:
        content, suffix = body, ".parquet"
    elif file is not None:
        content, suffix = file.file.read(), _suffix(file)
    else:  # as FastAPI answered when the field was required
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}]
        )
    target = _resolve(session, project.id, deployment_id, environment)
    deployment, model_version = deployment_of(
        session=session, project_id=project.id, deployment_id=target
    )
    if suffix in (".parquet", ".pq"):
        field = "file" if body is None else "body"

        def shape() -> pa.Table:
            return upload_table(
                read_parquet_table(content, limits=settings.table_limits(), field=field),
                schema=model_version.feature_schema,
                context_schema=model_version.context_schema,
            )

        kept = kept_upload(
            content,
            schema=model_version.feature_schema,
            context_schema=model_version.context_schema,
            limits=settings.table_limits(),
            shaped=shape,
        )
        if kept is not None:  # already a partition: stored as it came
            return _answer(
                lambda: log_inference_upload(
                    session=session,
                    store=settings.artifact_store(),
                    deployment=deployment,
                    upload=kept,
                ),
                session,
                actor,
                "inference.upload",
                target,
            )
        table = read_parquet_table(content, limits=settings.table_limits(), field=field)
        try:
            shaped = upload_table(
                table,
                schema=model_version.feature_schema,
                context_schema=model_version.context_schema,
            )
        except Irregular as why:
            if table.num_rows > MAX_BATCH:
                raise PayloadTooLarge(
                    f"the file holds {table.num_rows:,} rows and is judged record by record "
                    f"({why}), which takes at most {MAX_BATCH:,}; send it in smaller files or "
                    "as the plain shape",
                    field="file",
                ) from None
            frame = table.to_pandas()
        else:
            return _answer(
                lambda: log_inference_table(
                    session=session,
                    store=settings.artifact_store(),
                    deployment=deployment,
                    table=shaped,
                ),
                session,
                actor,
                "inference.upload",
                target,
            )
    else:
        frame = read_table(content, suffix=suffix, limits=settings.table_limits(max_rows=MAX_BATCH))
    records = records_from_frame(frame)
    refuse_non_finite(records)
    return _answer(
        lambda: log_inferences(
            session=session, store=settings.artifact_store(), deployment=deployment, records=records
        ),
        session,
        actor,
        "inference.upload",
        target,
    )


@router.post("/deployments/{deployment_id}/labels", status_code=status.HTTP_201_CREATED)
def post_labels(
    deployment_id: DeploymentRef,
    body: LabelsCreate,
    actor: Logger,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    environment: Environment = "production",
) -> InferenceBatchPublic:
    """Log ground truth for inferences logged before; the first label of a request id wins."""
    target = _resolve(session, project.id, deployment_id, environment)
    deployment, _ = deployment_of(session=session, project_id=project.id, deployment_id=target)
    return _answer(
        lambda: log_labels(
            session=session,
            store=settings.artifact_store(),
            deployment=deployment,
            labels=body.labels,
        ),
        session,
        actor,
        "inference.label",
        target,
    )


@router.post("/baselines", status_code=status.HTTP_201_CREATED)
def post_baseline(
    body: BaselineCreate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    environment: Environment = "production",
) -> BaselinePublic:
    """Build a deployment's reference baseline from a dataset version in the data directory."""
    return _created(
        lambda: create_baseline(
            session=session,
            store=settings.artifact_store(),
            project_id=project.id,
            spec=body,
            created_by=actor.principal_id,
            limits=settings.table_limits(),
            environment=environment,
        ),
        session,
        actor,
    )


def _created(
    build: Callable[[], StoredBaseline], session: SessionDep, actor: Actor
) -> BaselinePublic:
    """Build a baseline and record it (monitors may not import governance: the route does)."""
    stored = act_then_audit(
        build,
        session=session,
        actor=actor,
        action="baseline.create",
        target=lambda made: f"baseline:{made.id}",
        detail=lambda made: {
            "after": BaselinePublic.model_validate(made).model_dump(
                mode="json", exclude={"created_at"}
            )
        },
    )
    return BaselinePublic.model_validate(stored)


@router.post("/baselines/upload", status_code=status.HTTP_201_CREATED)
def upload_baseline(
    file: Annotated[UploadFile, File(description="The reference data, CSV or Parquet")],
    deployment_id: Annotated[
        str, Form(min_length=1, max_length=256, description="The deployment's id or name.")
    ],
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    label_column: Annotated[str | None, Form(max_length=256)] = None,
    prediction_column: Annotated[str | None, Form(max_length=256)] = None,
    score_column: Annotated[str | None, Form(max_length=256)] = None,
    environment: Environment = "production",
) -> BaselinePublic:
    """Upload the reference data itself (kept in the artifact store) and build the baseline.

    A refused upload (not a readable table, beyond the table limits, a column missing) leaves
    no file and no row behind.
    """
    try:
        spec = BaselineCreate(
            deployment_id=deployment_id,
            dataset_version_id=UPLOADED,
            label_column=label_column,
            prediction_column=prediction_column,
            score_column=score_column,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    return _created(
        lambda: create_uploaded_baseline(
            session=session,
            store=settings.artifact_store(),
            project_id=project.id,
            content=file.file.read(),
            suffix=_suffix(file),
            spec=spec,
            limits=settings.table_limits(),
            created_by=actor.principal_id,
            environment=environment,
        ),
        session,
        actor,
    )


@router.get("/baselines", dependencies=_READ)
def get_baselines(
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    deployment_id: Annotated[
        str | None,
        Query(min_length=1, max_length=256, description="Only this deployment's (id or name)."),
    ] = None,
    environment: Environment = "production",
) -> list[BaselinePublic]:
    """List the project's baselines, newest first (of one deployment when given)."""
    target = (
        None if deployment_id is None else _resolve(session, project.id, deployment_id, environment)
    )
    found = page_baselines(
        session=session,
        project_id=project.id,
        deployment_id=target,
        limit=page.limit,
        cursor=page.cursor,
    )
    return [BaselinePublic.model_validate(row) for row in page.answer(found)]


@router.get("/baselines/{baseline_id}", dependencies=_READ)
def read_baseline(
    baseline_id: uuid.UUID, project: CurrentProject, session: SessionDep
) -> BaselinePublic:
    """Return one baseline."""
    return BaselinePublic.model_validate(
        get_baseline(session=session, project_id=project.id, baseline_id=baseline_id)
    )


class ExplanationPublic(BaseModel):
    """A local explanation's job and, once it succeeded, the explanation.

    ``explanation`` holds ``base_value``, ``contributions`` (feature → contribution to the
    model's margin), ``output`` (``base_value`` plus the contributions), ``method`` (``tree`` or
    ``permutation``), ``output_class`` and the ``model_version_id`` explained.
    """

    job_id: uuid.UUID
    state: str
    progress: float
    message: str
    error: str | None
    explanation: dict[str, Any] | None

    @classmethod
    def of(cls, job: RuntimeJob) -> ExplanationPublic:
        """Return the public view of an explanation job."""
        return cls(
            job_id=job.id,
            state=job.state,
            progress=job.progress,
            message=job.message,
            error=job.error,
            explanation=job.result if job.state == "succeeded" else None,
        )


_EXPLANATION = "/deployments/{deployment_id}/inferences/{request_id}/explanation"


@router.post(_EXPLANATION, status_code=status.HTTP_202_ACCEPTED)
def request_explanation(
    deployment_id: DeploymentRef,
    request_id: str,
    actor: Runner,
    project: CurrentProject,
    session: SessionDep,
    response: Response,
    environment: Environment = "production",
) -> ExplanationPublic:
    """Queue the explanation of one logged inference; the worker loads the model and explains."""
    target = _resolve(session, project.id, deployment_id, environment)
    job, _queued = act_then_audit(
        lambda: queue_explanation(
            session=session,
            project_id=project.id,
            deployment_id=target,
            request_id=request_id,
        ),
        session=session,
        actor=actor,
        action="inference.explain",
        target=f"deployment:{target}",
        detail=lambda made: {"after": {"request_id": request_id, "job_id": str(made[0].id)}},
        when=lambda made: made[1],
    )
    response.headers["Location"] = (
        f"/api/v1/projects/{project.name}/deployments/{target}/inferences/"
        f"{quote(request_id, safe='')}/explanation"
    )
    return ExplanationPublic.of(job)


@router.get(_EXPLANATION, dependencies=_READ)
def read_explanation(
    deployment_id: DeploymentRef,
    request_id: str,
    project: CurrentProject,
    session: SessionDep,
    environment: Environment = "production",
) -> ExplanationPublic:
    """Return the newest explanation of one logged inference: its state, then its contributions."""
    target = _resolve(session, project.id, deployment_id, environment)
    deployment_of(session=session, project_id=project.id, deployment_id=target)
    return ExplanationPublic.of(
        latest_explanation(
            session=session,
            project_id=project.id,
            deployment_id=target,
            request_id=request_id,
        )
    )
