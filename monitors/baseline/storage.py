"""Stored reference baselines: built once from a dataset version, read by every monitor run.

A baseline belongs to a deployment (and so to the model version it serves). It is built from a
dataset version of the project, typically the training data, whose URI must name a CSV or
Parquet object *inside the artifact store* (:mod:`lineage.storage`: the data directory or a
bucket; an uploaded reference lands there too): Warden never reads an arbitrary server path a
client names.

Building renames the reference's label, prediction and score columns to the names inference
windows use (``label``, ``prediction``, ``score``), keeps the model's input columns (numeric
ones as float64, like logged inferences), and summarises them with
:func:`monitors.baseline.summary.build_baseline` — per-column mergeable summaries, reference
performance when the reference holds labels and predictions, and a reference sample. What
fairness and explanations compare against (reference group metrics, reference SHAP importance)
needs the model, which is never loaded in a request: the worker computes those from the sample
on first use (:mod:`monitors.execute`). The summary is kept as JSON in the artifact store under
a key made of ids (:func:`baseline_key`); the ``monitors_baseline`` row records where it came
from.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, or_, select

from lineage.deployments import DeploymentRef, resolve_body_deployment
from lineage.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from lineage.models import Dataset, DatasetVersion, Deployment, ModelVersion
from lineage.pages import (
    DEFAULT_PAGE_SIZE,
    Page,
    newest_first,
    newest_first_page,
)
from lineage.storage import LocalStore, ObjectStore, check_key
from lineage.tables import Record
from monitors.inferences import RESERVED_COLUMNS
from monitors.table_files import (
    SUFFIXES,
    TableLimits,
    check_parquet_footer,
    read_table,
    table_suffix,
)

if TYPE_CHECKING:
    import pandas as pd

    from monitors.baseline.summary import Baseline

__all__ = [
    "UPLOADED",
    "BaselineCreate",
    "BaselinePublic",
    "StoredBaseline",
    "baseline_key",
    "create_baseline",
    "create_uploaded_baseline",
    "get_baseline",
    "latest_baseline",
    "list_baselines",
    "load_baseline",
    "page_baselines",
    "read_reference",
    "reference_key",
    "save_baseline",
    "store_reference",
]

_CACHED_BASELINES = 32
_CACHE: OrderedDict[tuple[str, str], Baseline] = OrderedDict()
_CACHE_LOCK = threading.Lock()
UPLOADED = uuid.UUID(int=0)
"""The ``dataset_version_id`` of a spec whose reference is being uploaded (replaced on storing)."""
_COLUMN = Field(default=None, min_length=1, max_length=256)


class StoredBaseline(Record, table=True):
    """A reference baseline of a deployment: where it came from and what it summarises."""

    __tablename__ = "monitors_baseline"

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True, nullable=False)
    deployment_id: uuid.UUID = SQLField(
        foreign_key="lineage_deployment.id", index=True, nullable=False
    )
    model_version_id: uuid.UUID = SQLField(
        foreign_key="lineage_model_version.id", index=True, nullable=False
    )
    dataset_version_id: uuid.UUID | None = SQLField(
        default=None, foreign_key="lineage_dataset_version.id"
    )
    rows: int = SQLField(nullable=False)
    columns: list[str] = SQLField(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    extras: list[str] = SQLField(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_by: uuid.UUID | None = SQLField(default=None)


class BaselineCreate(BaseModel):
    """Build a baseline for a deployment from a dataset version stored in the artifact store.

    Attributes:
        deployment_id: The deployment the baseline is the reference of: its id, or its name
            (the one live in the caller's ``environment``).
        dataset_version_id: The reference data (a lineage dataset version whose URI is a CSV or
            Parquet object inside the artifact store).
        label_column: The reference's ground-truth column (renamed ``label``).
        prediction_column: The reference's prediction column, if it has one (``prediction``).
        score_column: The reference's positive-class probability column (``score``).
        positive_label: The positive class, for reference performance.
        categorical: Columns to treat as categorical whatever their type.
        probability_columns: For a multi-class model, class → the reference's column holding
            that class's probability (what performance estimation calibrates).
    """

    model_config = ConfigDict(extra="forbid")

    deployment_id: DeploymentRef
    dataset_version_id: uuid.UUID
    label_column: str | None = _COLUMN
    prediction_column: str | None = _COLUMN
    score_column: str | None = _COLUMN
    positive_label: int | str = 1
    categorical: list[str] = Field(default_factory=list, max_length=1000)
    probability_columns: dict[str, str] = Field(default_factory=dict, max_length=1000)


class BaselinePublic(BaseModel):
    """A baseline as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    deployment_id: uuid.UUID
    model_version_id: uuid.UUID
    dataset_version_id: uuid.UUID | None
    rows: int
    columns: list[str]
    extras: list[str]
    created_at: datetime


def baseline_key(*, project_id: uuid.UUID, baseline_id: uuid.UUID) -> str:
    """Return a baseline's key in the artifact store: ids only, never a client's string."""
    return f"baselines/{project_id}/{baseline_id}.json"


def _outside(uri: str) -> InvalidInput:
    return InvalidInput(
        f"the dataset version lives at {uri!r}, outside Warden's artifact store; Warden never "
        "reads arbitrary server paths or buckets — copy or upload the reference into the store",
        field="dataset_version_id",
    )


def reference_key(store: ObjectStore, uri: str) -> str:
    """Return the key of the object a dataset URI names, if and only if it lies in ``store``.

    Accepts a key (a path relative to the store), the store's own URL followed by a key
    (``s3://bucket/prefix/…``), and for a local store ``file://`` URIs and absolute paths that
    resolve (symbolic links followed) inside its directory; refuses anything else and objects
    that are not CSV or Parquet or do not exist.

    Raises:
        InvalidInput: The URI is not a readable reference inside the store.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") and isinstance(store, LocalStore):
        # Resolved with symbolic links followed, so a link cannot lead a read out of the store.
        raw = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        root = store.root.resolve()
        path = (raw if raw.is_absolute() else root / raw).resolve()
        if not path.is_relative_to(root):
            raise _outside(uri)
        key = path.relative_to(root).as_posix()
    elif uri.startswith(f"{store.url}/"):
        key = uri.removeprefix(f"{store.url}/")
    elif parsed.scheme == "" and not uri.startswith("/"):
        key = uri
    else:
        raise _outside(uri)
    try:
        check_key(key)
    except InvalidInput:
        raise _outside(uri) from None
    if not key.lower().endswith(SUFFIXES) or not store.exists(key):
        raise InvalidInput(
            f"the dataset version's object {key} is not a CSV or Parquet file in the artifact "
            f"store {store.url}",
            field="dataset_version_id",
        )
    return key


def read_reference(
    store: ObjectStore,
    key: str,
    *,
    limits: TableLimits | None = None,
    field: str = "dataset_version_id",
) -> pd.DataFrame:
    """Read a reference table from a CSV or Parquet object, within ``limits``.

    A Parquet file too large is refused by its footer before anything else is read: a local
    file is read from its path; of an object in a bucket only the footer is fetched (through
    the store's Arrow filesystem) before the object is downloaded. A CSV object in a bucket is
    refused by its size, from the bucket's listing, before it is downloaded.

    Raises:
        PayloadTooLarge: The table exceeds ``limits``.
        InvalidInput: The object is not a readable table.
        Unavailable: The store cannot be read.
    """
    suffix = table_suffix(key, field=field)
    bounds = limits or TableLimits()
    if isinstance(store, LocalStore):
        source: bytes | Path = store.root.joinpath(*key.split("/"))
    else:
        _check_remote(store, key, suffix=suffix, limits=bounds, field=field)
        source = store.get(key)
    return read_table(source, suffix=suffix, limits=bounds, field=field)


def _check_remote(
    store: ObjectStore, key: str, *, suffix: str, limits: TableLimits, field: str
) -> None:
    """Refuse an object in a bucket too large for ``limits`` before downloading it.

    Parquet by its footer (only the footer's bytes are fetched); CSV by its size. A gzipped
    CSV inflates to at least its compressed size less deflate's framing (5 bytes per stored
    64 KiB block, plus the header), so a compressed size beyond that margin is too large too.
    """
    filesystem, root = store.arrow_filesystem()
    path = f"{root}/{check_key(key)}"
    try:
        if suffix in (".parquet", ".pq"):
            with filesystem.open_input_file(path) as handle:
                check_parquet_footer(handle, limits=limits, field=field)
            return
        size = int(filesystem.get_file_info(path).size or 0)
    except OSError as error:
        store.check()  # names a missing bucket or refused credentials
        raise Unavailable(
            f"the object store {store.url} failed reading {key!r} ({error})",
            field="WARDEN_ARTIFACT_URL",
        ) from None
    framing = 0 if suffix == ".csv" else 1024 + 5 * (size // 65_536 + 1)
    if size - framing > limits.max_bytes:
        raise PayloadTooLarge(
            f"the file holds {size:,} bytes{'' if suffix == '.csv' else ' compressed'}; "
            f"at most {limits.max_bytes:,} are accepted",
            field=field,
        )


def _prepare(frame: pd.DataFrame, spec: BaselineCreate, schema: dict[str, str]) -> pd.DataFrame:
    """Rename Warden's columns, keep the model's inputs, cast numeric inputs to float64."""
    renames = {
        spec.label_column: "label",
        spec.prediction_column: "prediction",
        spec.score_column: "score",
    }
    for source, field_name in (
        (spec.label_column, "label_column"),
        (spec.prediction_column, "prediction_column"),
        (spec.score_column, "score_column"),
    ):
        if source is not None and source not in frame.columns:
            raise InvalidInput(
                f"the reference has no column {source!r}; its columns are "
                f"{sorted(map(str, frame.columns))}",
                field=field_name,
            )
    features = list(schema) or [
        str(c) for c in frame.columns if c not in renames and c not in RESERVED_COLUMNS
    ]
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the reference lacks the model's input columns {missing}", field="dataset_version_id"
        )
    kept = frame[features].copy()
    for name, kind in schema.items():
        if kind in ("float", "integer"):
            kept[name] = kept[name].astype("float64")
    for source, target in renames.items():
        if source is not None:
            kept[target] = frame[source].to_numpy()
    return kept


def save_baseline(
    *,
    session: Session,
    store: ObjectStore,
    deployment: Deployment,
    baseline: Baseline,
    dataset_version_id: uuid.UUID | None,
    created_by: uuid.UUID | None,
) -> StoredBaseline:
    """Record a built baseline for a deployment and store its JSON (before the caller commits)."""
    row = StoredBaseline(
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        model_version_id=deployment.model_version_id,
        dataset_version_id=dataset_version_id,
        rows=baseline.rows,
        columns=list(baseline.columns),
        extras=sorted(baseline.extras),
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    key = baseline_key(project_id=row.project_id, baseline_id=row.id)
    store.put(key, baseline.to_json().encode())
    return row


def _estimation_section(
    reference: pd.DataFrame, frame: pd.DataFrame, spec: BaselineCreate, *, task: str
) -> dict[str, Any] | None:
    """Calibrate a scored classifier's reference for performance estimation (CBPE).

    ``None`` for a regressor or a reference without scores (a regressor's loss model is fitted
    in the worker from the baseline's sample).
    """
    from monitors.estimation import reference_estimation

    if task != "classification":
        return None
    probability_columns = dict(spec.probability_columns)
    missing = sorted(set(probability_columns.values()) - {str(c) for c in reference.columns})
    if missing:
        raise InvalidInput(
            f"the reference has no probability column {missing[0]!r}", field="probability_columns"
        )
    if not probability_columns and spec.score_column is None:
        return None
    scored = frame.copy()
    for name, column in probability_columns.items():
        scored[f"probability:{name}"] = reference[column].to_numpy()
    try:
        return reference_estimation(
            scored,
            label_column="label",
            prediction_column="prediction",
            score_column="score" if spec.score_column else None,
            probability_columns={n: f"probability:{n}" for n in probability_columns} or None,
            positive_label=spec.positive_label,
        )
    except InvalidInput as error:
        if error.field in ("label_column", "prediction_column", "score_column"):
            return None  # too few labelled rows: the baseline stands, estimation cannot run
        raise


def create_baseline(
    *,
    session: Session,
    store: ObjectStore,
    project_id: uuid.UUID,
    spec: BaselineCreate,
    created_by: uuid.UUID | None = None,
    limits: TableLimits | None = None,
    environment: str = "production",
) -> StoredBaseline:
    """Build and store the baseline of a deployment from a dataset version of the project.

    Raises:
        InvalidInput: The deployment or dataset version is not in the project, the dataset's
            object is not inside the artifact store or not a readable table, or a named column
            is missing.
        PayloadTooLarge: The reference exceeds ``limits``.
    """
    from monitors.baseline.summary import build_baseline
    from monitors.performance import reference_performance

    deployment = resolve_body_deployment(
        session=session, project_id=project_id, ref=spec.deployment_id, environment=environment
    )
    version = session.get(DatasetVersion, spec.dataset_version_id)
    if version is None or version.project_id != project_id:
        raise InvalidInput(
            f"no dataset version {spec.dataset_version_id} in this project",
            field="dataset_version_id",
        )
    if not version.uri:
        raise InvalidInput(
            "the dataset version has no URI; report where the data lives (OpenLineage) first",
            field="dataset_version_id",
        )
    model_version = session.get(ModelVersion, deployment.model_version_id)
    schema = {} if model_version is None else dict(model_version.feature_schema)
    reference = read_reference(store, reference_key(store, version.uri), limits=limits)
    frame = _prepare(reference, spec, schema)
    extras: dict[str, Any] = {}
    if spec.label_column is not None and spec.prediction_column is not None:
        extras["performance"] = reference_performance(
            frame,
            label_column="label",
            prediction_column="prediction",
            score_column="score" if spec.score_column else None,
            positive_label=spec.positive_label,
        )
        estimation = _estimation_section(reference, frame, spec, task=extras["performance"]["task"])
        if estimation is not None:
            extras["performance_estimate"] = estimation
    baseline = build_baseline(
        frame, categorical=[c for c in spec.categorical if c in frame.columns], extras=extras
    )
    return save_baseline(
        session=session,
        store=store,
        deployment=deployment,
        baseline=baseline,
        dataset_version_id=version.id,
        created_by=created_by,
    )


def store_reference(
    *, session: Session, store: ObjectStore, project_id: uuid.UUID, content: bytes, suffix: str
) -> uuid.UUID:
    """Keep an uploaded reference file in the artifact store and record it as a dataset version.

    The file lands at ``references/<project id>/<sha256><suffix>`` (a key made of the project id
    and the content digest only) and is recorded in lineage through an OpenLineage dataset event
    (namespace ``warden``, name ``references/<sha256>``, version the digest, ``dataSource`` the
    path), so a baseline built from it has the same provenance as one built from any dataset.

    Returns:
        The id of the dataset version to build the baseline from.

    Raises:
        InvalidInput: The file is empty or not named as a table (see :data:`SUFFIXES`).
    """
    import hashlib

    from lineage.openlineage_events import DatasetRef, dataset_event, emit
    from lineage.tables import utcnow

    if suffix not in SUFFIXES:
        raise InvalidInput(f"send a file named *{', *'.join(SUFFIXES)}", field="file")
    if not content:
        raise InvalidInput("the file is empty", field="file")
    digest = hashlib.sha256(content).hexdigest()
    key = _reference_key(project_id=project_id, content=content, suffix=suffix)
    store.put(key, content)
    dataset = DatasetRef("warden", f"references/{digest}", version=digest, uri=key)
    emit(
        session=session,
        project_id=project_id,
        event=dataset_event(event_time=utcnow(), dataset=dataset),
    )
    version = session.exec(
        select(DatasetVersion)
        .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
        .where(
            Dataset.project_id == project_id,
            Dataset.namespace == "warden",
            Dataset.name == f"references/{digest}",
            DatasetVersion.version == digest,
        )
    ).one()
    return version.id


def _reference_key(*, project_id: uuid.UUID, content: bytes, suffix: str) -> str:
    """Return the key of an uploaded reference in the artifact store."""
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    return f"references/{project_id}/{digest}{suffix}"


def create_uploaded_baseline(
    *,
    session: Session,
    store: ObjectStore,
    project_id: uuid.UUID,
    content: bytes,
    suffix: str,
    spec: BaselineCreate,
    limits: TableLimits,
    created_by: uuid.UUID | None = None,
    environment: str = "production",
) -> StoredBaseline:
    """Keep an uploaded reference and build a deployment's baseline from it, or keep nothing.

    The content is read within ``limits`` before anything is written, so a file that is not a
    readable table, or too large once decoded, is refused with no file left behind; a later
    refusal (a missing column) removes the files this call wrote. ``spec.dataset_version_id``
    is :data:`UPLOADED`: it becomes the stored reference's dataset version.

    Raises:
        InvalidInput: The file is not a readable table, or the spec does not fit it.
        PayloadTooLarge: The file exceeds ``limits``.
    """
    read_table(content, suffix=suffix, limits=limits)
    reference = _reference_key(project_id=project_id, content=content, suffix=suffix)
    existed = store.exists(reference)
    try:
        version_id = store_reference(
            session=session,
            store=store,
            project_id=project_id,
            content=content,
            suffix=suffix,
        )
        return create_baseline(
            session=session,
            store=store,
            project_id=project_id,
            spec=spec.model_copy(update={"dataset_version_id": version_id}),
            created_by=created_by,
            limits=limits,
            environment=environment,
        )
    except BaseException:
        if not existed:
            store.delete(reference)
        raise


def get_baseline(
    *, session: Session, project_id: uuid.UUID, baseline_id: uuid.UUID
) -> StoredBaseline:
    """Return a baseline of the project, or raise :class:`NotFound`."""
    row = session.get(StoredBaseline, baseline_id)
    if row is None or row.project_id != project_id:
        raise NotFound(f"no baseline {baseline_id} in this project")
    return row


def list_baselines(
    *, session: Session, project_id: uuid.UUID, deployment_id: uuid.UUID | None = None
) -> list[StoredBaseline]:
    """Return the project's baselines, newest first (of one deployment when given)."""
    query = _baselines_of(project_id, deployment_id)
    return list(session.exec(newest_first(query, StoredBaseline)).all())


def _baselines_of(project_id: uuid.UUID, deployment_id: uuid.UUID | None) -> Any:
    query = select(StoredBaseline).where(StoredBaseline.project_id == project_id)
    if deployment_id is not None:
        query = query.where(StoredBaseline.deployment_id == deployment_id)
    return query


def page_baselines(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[StoredBaseline]:
    """Return a page of the project's baselines (of one deployment), newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return newest_first_page(
        session=session,
        query=_baselines_of(project_id, deployment_id),
        record=StoredBaseline,
        limit=limit,
        cursor=cursor,
    )


def latest_baseline(*, session: Session, deployment: Deployment) -> StoredBaseline:
    """Return the newest baseline of a deployment, or of the model version it serves.

    Raises:
        NotFound: There is none: build one first (``POST …/baselines``).
    """
    row = session.exec(
        select(StoredBaseline)
        .where(
            StoredBaseline.project_id == deployment.project_id,
            or_(
                col(StoredBaseline.deployment_id) == deployment.id,
                col(StoredBaseline.model_version_id) == deployment.model_version_id,
            ),
        )
        .order_by(col(StoredBaseline.created_at).desc())
    ).first()
    if row is None:
        raise NotFound(
            f"deployment {deployment.id} has no baseline; build one from the training data "
            "(POST …/baselines) before running monitors"
        )
    return row


def load_baseline(*, store: ObjectStore, stored: StoredBaseline) -> Baseline:
    """Read a stored baseline's summary from the artifact store.

    A baseline is written once under its own id and never changed, and parsing it costs more
    than a small monitor run's statistics, so a process keeps the last few it read (keyed by
    the store's URL and the key: nothing to ask the store on a hit). Treat the result as
    read-only.
    """
    from monitors.baseline.summary import Baseline

    key = baseline_key(project_id=stored.project_id, baseline_id=stored.id)
    cached = (store.url, key)
    with _CACHE_LOCK:
        if cached in _CACHE:
            _CACHE.move_to_end(cached)
            return _CACHE[cached]
    baseline = Baseline.from_json(store.get(key).decode())
    with _CACHE_LOCK:
        _CACHE[cached] = baseline
        while len(_CACHE) > _CACHED_BASELINES:
            _CACHE.popitem(last=False)
    return baseline
