"""OpenLineage ingestion: validate an event, store it unchanged, derive the lineage graph from it.

Accepted are the three event kinds of the OpenLineage 2-0-x spec, told apart by their keys the
way Marquez does: a ``RunEvent`` has ``run`` and ``job``, a ``JobEvent`` has ``job`` only, a
``DatasetEvent`` has ``dataset``. Unknown extra fields and facets are kept (they are in the raw
event) and ignored by the derivation.

How dataset versions are identified (the ``version`` of :class:`~lineage.models.DatasetVersion`):

* a dataset carrying the ``version`` facet (``facets.version.datasetVersion``) is that version;
* an output without it gets the SHA-256 of ``(namespace, name, runId)``: each run writes a new
  version, and every event of the same run names the same one;
* an input without it is the version this run already consumed, else the latest known version of
  the dataset, else a first version digested from ``(namespace, name, schema fields)``.

Replaying an event is a no-op: events are keyed by the SHA-256 of their canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.edges import link
from lineage.errors import Conflict, InvalidInput
from lineage.models import (
    Dataset,
    DatasetVersion,
    Edge,
    EdgeKind,
    Job,
    LineageEvent,
    Run,
    RunState,
)

__all__ = ["LineageIngestResult", "canonical_digest", "ingest_event", "ingest_payload"]

_Name = Annotated[str, Field(min_length=1, max_length=1024)]
_TERMINAL = frozenset({RunState.COMPLETE, RunState.ABORT, RunState.FAIL})


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Facetted(_Open):
    namespace: _Name
    name: _Name
    facets: dict[str, Any] = Field(default_factory=dict)


class _InputDataset(_Facetted):
    input_facets: dict[str, Any] = Field(default_factory=dict, alias="inputFacets")


class _OutputDataset(_Facetted):
    output_facets: dict[str, Any] = Field(default_factory=dict, alias="outputFacets")


class _Run(_Open):
    run_id: uuid.UUID = Field(alias="runId")
    facets: dict[str, Any] = Field(default_factory=dict)


class _BaseEvent(_Open):
    event_time: AwareDatetime = Field(alias="eventTime")
    producer: Annotated[str, Field(min_length=1)]
    schema_url: Annotated[str, Field(min_length=1, alias="schemaURL")]


class _JobEvent(_BaseEvent):
    job: _Facetted
    inputs: list[_InputDataset] = Field(default_factory=list)
    outputs: list[_OutputDataset] = Field(default_factory=list)


class _RunEvent(_JobEvent):
    event_type: Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"] | None = Field(
        default=None, alias="eventType"
    )
    run: _Run


class _DatasetEvent(_BaseEvent):
    dataset: _Facetted


@dataclass(frozen=True, slots=True)
class LineageIngestResult:
    """What happened to one posted event.

    Attributes:
        event_id: The id of the stored raw event (the earlier one, for a replay).
        kind: ``run``, ``job`` or ``dataset``.
        created: ``False`` when the event had been received before and nothing changed.
    """

    event_id: uuid.UUID
    kind: str
    created: bool


def canonical_digest(payload: Any) -> str:
    """Return the SHA-256 of ``payload``'s canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _parse(body: bytes) -> tuple[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the body is not UTF-8 ({error.reason}); send the event as UTF-8 JSON", field="body"
        ) from None
    try:
        payload = json.loads(text)
    except RecursionError:
        raise InvalidInput(
            "the body nests deeper than an OpenLineage event can (arrays or objects inside each "
            "other thousands of levels deep); send one event with facets a few levels deep",
            field="body",
        ) from None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"the body is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}); send one OpenLineage event as a JSON object",
            field="body",
        ) from None
    if not isinstance(payload, dict):
        raise InvalidInput(
            "the body must be one OpenLineage event, a JSON object; "
            f"got a JSON {type(payload).__name__}",
            field="body",
        )
    return text, payload


def _validate(payload: dict[str, Any]) -> _RunEvent | _JobEvent | _DatasetEvent:
    model: type[_RunEvent] | type[_JobEvent] | type[_DatasetEvent]
    if "run" in payload:
        model = _RunEvent
    elif "dataset" in payload:
        model = _DatasetEvent
    elif "job" in payload:
        model = _JobEvent
    else:
        raise InvalidInput(
            "not an OpenLineage event: a RunEvent needs 'run' and 'job', a JobEvent 'job', "
            "a DatasetEvent 'dataset' (spec 2-0-x)",
            field="run",
        )
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            detail = f"field {field!r} is required in an OpenLineage {model.__name__[1:]}; add it"
        else:
            detail = f"field {field!r}: {first['msg']}; correct it (OpenLineage spec 2-0-x)"
        raise InvalidInput(detail, field=field) from None


def _check_versions(event: _RunEvent | _JobEvent | _DatasetEvent) -> None:
    if isinstance(event, _DatasetEvent):
        _declared_version(event.dataset, "dataset")
        return
    for index, dataset in enumerate(event.inputs):
        _declared_version(dataset, f"inputs.{index}")
    for index, output in enumerate(event.outputs):
        _declared_version(output, f"outputs.{index}")


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new} if new else old


def _upsert_job(*, session: Session, project_id: uuid.UUID, job: _Facetted) -> Job:
    row = session.exec(
        select(Job).where(
            Job.project_id == project_id, Job.namespace == job.namespace, Job.name == job.name
        )
    ).first()
    if row is None:
        row = Job(project_id=project_id, namespace=job.namespace, name=job.name, facets=job.facets)
        session.add(row)
    else:
        row.facets = _merge(row.facets, job.facets)
    return row


def _upsert_dataset(*, session: Session, project_id: uuid.UUID, dataset: _Facetted) -> Dataset:
    row = session.exec(
        select(Dataset).where(
            Dataset.project_id == project_id,
            Dataset.namespace == dataset.namespace,
            Dataset.name == dataset.name,
        )
    ).first()
    if row is None:
        row = Dataset(
            project_id=project_id,
            namespace=dataset.namespace,
            name=dataset.name,
            facets=dataset.facets,
        )
        session.add(row)
        session.flush()
    else:
        row.facets = _merge(row.facets, dataset.facets)
    return row


def _facet(facets: dict[str, Any], name: str, key: str) -> Any:
    facet = facets.get(name)
    return facet.get(key) if isinstance(facet, dict) else None


def _schema_fields(dataset: _Facetted) -> list[dict[str, Any]] | None:
    fields = _facet(dataset.facets, "schema", "fields")
    return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else None


def _declared_version(dataset: _Facetted, field: str) -> str | None:
    version = _facet(dataset.facets, "version", "datasetVersion")
    if version is None:
        return None
    if not isinstance(version, str) or not 0 < len(version) <= 256:
        raise InvalidInput(
            f"field '{field}.facets.version.datasetVersion' must be a string of 1-256 characters",
            field=f"{field}.facets.version.datasetVersion",
        )
    return version


def _row_count(dataset: _Facetted) -> int | None:
    if isinstance(dataset, _OutputDataset):
        count = _facet(dataset.output_facets, "outputStatistics", "rowCount")
    elif isinstance(dataset, _InputDataset):
        count = _facet(dataset.input_facets, "inputStatistics", "rowCount")
    else:
        count = None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _uri(dataset: _Facetted) -> str | None:
    uri = _facet(dataset.facets, "dataSource", "uri")
    return uri if isinstance(uri, str) and len(uri) <= 2048 else None


def _upsert_version(
    *,
    session: Session,
    project_id: uuid.UUID,
    dataset_row: Dataset,
    dataset: _Facetted,
    version: str,
) -> DatasetVersion:
    row = session.exec(
        select(DatasetVersion).where(
            DatasetVersion.dataset_id == dataset_row.id, DatasetVersion.version == version
        )
    ).first()
    schema, rows, uri = _schema_fields(dataset), _row_count(dataset), _uri(dataset)
    if row is None:
        row = DatasetVersion(
            project_id=project_id,
            dataset_id=dataset_row.id,
            version=version,
            schema_fields=schema,
            row_count=rows,
            uri=uri,
        )
        session.add(row)
        session.flush()
        return row
    row.schema_fields = schema if schema is not None else row.schema_fields
    row.row_count = rows if rows is not None else row.row_count
    row.uri = uri if uri is not None else row.uri
    return row


def _input_version(
    *, session: Session, dataset_row: Dataset, dataset: _InputDataset, run: Run | None, field: str
) -> str:
    declared = _declared_version(dataset, field)
    if declared is not None:
        return declared
    if run is not None:
        consumed = session.exec(
            select(DatasetVersion.version)
            .join(Edge, Edge.source_id == DatasetVersion.id)  # type: ignore[arg-type]
            .where(
                Edge.kind == EdgeKind.RUN_INPUT,
                Edge.target_id == run.id,
                DatasetVersion.dataset_id == dataset_row.id,
            )
        ).first()
        if consumed is not None:
            return consumed
    latest = session.exec(
        select(DatasetVersion.version)
        .where(DatasetVersion.dataset_id == dataset_row.id)
        .order_by(sa.desc(col(DatasetVersion.created_at)))
    ).first()
    if latest is not None:
        return latest
    return canonical_digest(
        {"namespace": dataset.namespace, "name": dataset.name, "schema": _schema_fields(dataset)}
    )


def _output_version(dataset: _OutputDataset, run_id: uuid.UUID, field: str) -> str:
    declared = _declared_version(dataset, field)
    if declared is not None:
        return declared
    return canonical_digest(
        {"namespace": dataset.namespace, "name": dataset.name, "run": str(run_id)}
    )


def _upsert_run(*, session: Session, project_id: uuid.UUID, job: Job, event: _RunEvent) -> Run:
    state = RunState(event.event_type or RunState.OTHER)
    at: datetime = event.event_time
    run = session.exec(
        select(Run).where(Run.project_id == project_id, Run.run_id == event.run.run_id)
    ).first()
    if run is None:
        run = Run(
            project_id=project_id,
            job_id=job.id,
            run_id=event.run.run_id,
            state=state,
            state_at=at,
            facets=event.run.facets,
        )
        session.add(run)
    elif run.job_id != job.id:
        raise InvalidInput(
            f"run {event.run.run_id} was reported for another job; a runId belongs to one job, "
            "send a fresh runId for this one",
            field="run.runId",
        )
    else:
        run.facets = _merge(run.facets, event.run.facets)
        if state is not RunState.OTHER and at >= run.state_at:
            run.state, run.state_at = state, at
    if state is RunState.START and (run.started_at is None or at < run.started_at):
        run.started_at = at
    if state in _TERMINAL and (run.ended_at is None or at > run.ended_at):
        run.ended_at = at
    session.flush()
    return run


def _derive_job(
    *, session: Session, project_id: uuid.UUID, event: _JobEvent, run: Run | None, job: Job
) -> None:
    for index, dataset in enumerate(event.inputs):
        row = _upsert_dataset(session=session, project_id=project_id, dataset=dataset)
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.JOB_INPUT,
            source_id=row.id,
            target_id=job.id,
        )
        if run is None:
            continue
        version = _input_version(
            session=session, dataset_row=row, dataset=dataset, run=run, field=f"inputs.{index}"
        )
        dv = _upsert_version(
            session=session,
            project_id=project_id,
            dataset_row=row,
            dataset=dataset,
            version=version,
        )
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.RUN_INPUT,
            source_id=dv.id,
            target_id=run.id,
        )
    for index, output in enumerate(event.outputs):
        row = _upsert_dataset(session=session, project_id=project_id, dataset=output)
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.JOB_OUTPUT,
            source_id=job.id,
            target_id=row.id,
        )
        if run is None:
            continue
        version = _output_version(output, run.run_id, f"outputs.{index}")
        dv = _upsert_version(
            session=session,
            project_id=project_id,
            dataset_row=row,
            dataset=output,
            version=version,
        )
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.RUN_OUTPUT,
            source_id=run.id,
            target_id=dv.id,
        )


def ingest_event(*, session: Session, project_id: uuid.UUID, body: bytes) -> LineageIngestResult:
    """Validate one OpenLineage event, store it unchanged and derive the graph it describes.

    Args:
        session: The caller's session; nothing is committed here.
        project_id: The project the event lands in.
        body: The event as received (already decompressed), UTF-8 JSON.

    Returns:
        The stored event's id and whether it was new; a replay returns the first one.

    Raises:
        InvalidInput: The body is not JSON, not an OpenLineage event, or a field is wrong; the
            error names the field. Fields are checked before anything is written; a run that
            changes job is caught later, so roll the session back on error (``session_scope``
            and the request session do).
        Conflict: A concurrent request kept colliding with this one; the client should retry.
    """
    text, payload = _parse(body)
    return _ingest(session=session, project_id=project_id, payload=payload, text=text)


def ingest_payload(
    *, session: Session, project_id: uuid.UUID, payload: dict[str, Any]
) -> LineageIngestResult:
    """Validate and store an event Warden built itself (see :mod:`lineage.openlineage_events`).

    The same checks as :func:`ingest_event`, without encoding and parsing the JSON once more; the
    raw event is stored in its canonical JSON form.
    """
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return _ingest(session=session, project_id=project_id, payload=payload, text=text)


def _ingest(
    *, session: Session, project_id: uuid.UUID, payload: dict[str, Any], text: str
) -> LineageIngestResult:
    event = _validate(payload)
    _check_versions(event)
    kind = (
        "run"
        if isinstance(event, _RunEvent)
        else "dataset"
        if isinstance(event, _DatasetEvent)
        else "job"
    )
    digest = canonical_digest(payload)
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _store(
                    session=session,
                    project_id=project_id,
                    event=event,
                    kind=kind,
                    digest=digest,
                    text=text,
                )
        except IntegrityError:
            # A concurrent request created the same event, job, run or dataset first and has
            # committed (PostgreSQL waits for it); a second pass finds its rows and reuses them.
            if attempt == 2:
                raise Conflict(
                    "another request was writing the same lineage at the same moment; retry"
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _store(
    *,
    session: Session,
    project_id: uuid.UUID,
    event: _RunEvent | _JobEvent | _DatasetEvent,
    kind: str,
    digest: str,
    text: str,
) -> LineageIngestResult:
    stored = session.exec(
        select(LineageEvent).where(
            LineageEvent.project_id == project_id, LineageEvent.digest == digest
        )
    ).first()
    if stored is not None:
        return LineageIngestResult(event_id=stored.id, kind=stored.event_kind, created=False)

    if isinstance(event, _DatasetEvent):
        row = _upsert_dataset(session=session, project_id=project_id, dataset=event.dataset)
        version = _declared_version(event.dataset, "dataset")
        if version is not None:
            _upsert_version(
                session=session,
                project_id=project_id,
                dataset_row=row,
                dataset=event.dataset,
                version=version,
            )
    else:
        job = _upsert_job(session=session, project_id=project_id, job=event.job)
        session.flush()
        run = (
            _upsert_run(session=session, project_id=project_id, job=job, event=event)
            if isinstance(event, _RunEvent)
            else None
        )
        _derive_job(session=session, project_id=project_id, event=event, run=run, job=job)

    raw = LineageEvent(
        project_id=project_id,
        event_kind=kind,
        event_time=event.event_time,
        digest=digest,
        body=text,
    )
    session.add(raw)
    session.flush()
    return LineageIngestResult(event_id=raw.id, kind=kind, created=True)
