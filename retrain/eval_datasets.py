"""Evaluation datasets: named, versioned sets of records (inputs and expectations) for prompts.

A dataset has numbered versions; a version holds :class:`EvalRecord` rows — the template's
``inputs`` and what a good answer looks like (``expected_response``, ``facts``, ``guidelines``,
``context``). Records are added while a version is open; the first run that uses it *freezes*
it (``frozen_at`` and the ``content_sha256`` of its records), and a frozen version never
changes, so a run's figures always refer to the records it scored. A new version starts empty
or as a copy of an earlier one (``base_version``).

Records come from a JSON body, an uploaded JSONL or CSV file (:func:`parse_records`), or from
stored traces (:func:`records_from_traces`): the trace's last user message becomes the
``input`` and its answer the ``expected_response``, passed through the project's redactor again
(its rules may be stricter than when the trace was stored). Services never commit; each action
is audited by its caller through ``act_then_audit``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Field as Column
from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from lineage.tables import AwareDateTime, Record, utcnow
from monitors.traces.models import TraceContent, TraceSpan
from monitors.traces.redaction_rules import Sealer, project_redactor

__all__ = [
    "MAX_RECORDS",
    "EvalDataset",
    "EvalDatasetCreate",
    "EvalDatasetVersion",
    "EvalRecord",
    "EvalRecordCreate",
    "EvalVersionCreate",
    "add_records",
    "create_dataset",
    "create_version",
    "freeze_version",
    "get_dataset",
    "get_version",
    "list_datasets",
    "list_versions",
    "parse_records",
    "records_from_traces",
    "records_of",
]

MAX_RECORDS = 10_000
"""The most records one dataset version holds."""
_TEXT = 100_000
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_EXPECTATIONS = ("expected_response", "facts", "guidelines", "context")
_PROJECT_FK = "lineage_project.id"


class EvalDataset(Record, table=True):
    """A named evaluation dataset of a project; its records live in versions."""

    __tablename__ = "retrain_eval_dataset"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = Column(foreign_key=_PROJECT_FK, index=True)
    name: str = Column(sa_column=sa.Column(sa.String(64), nullable=False))
    description: str = Column(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    created_by: uuid.UUID | None = Column(default=None)


class EvalDatasetVersion(Record, table=True):
    """One version of a dataset: open for records until a run freezes it."""

    __tablename__ = "retrain_eval_dataset_version"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "version"),)

    project_id: uuid.UUID = Column(foreign_key=_PROJECT_FK, index=True)
    dataset_id: uuid.UUID = Column(foreign_key="retrain_eval_dataset.id", index=True)
    version: int = Column(sa_column=sa.Column(sa.Integer(), nullable=False))
    record_count: int = Column(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    source: str = Column(sa_column=sa.Column(sa.String(16), nullable=False))
    frozen_at: datetime | None = Column(default=None, sa_column=sa.Column(AwareDateTime()))
    content_sha256: str | None = Column(default=None, sa_column=sa.Column(sa.String(64)))
    created_by: uuid.UUID | None = Column(default=None)


class EvalRecord(Record, table=True):
    """One record: the inputs a prompt is rendered with, and what a good answer is."""

    __tablename__ = "retrain_eval_record"
    __table_args__ = (sa.UniqueConstraint("version_id", "position"),)

    project_id: uuid.UUID = Column(foreign_key=_PROJECT_FK, index=True)
    version_id: uuid.UUID = Column(foreign_key="retrain_eval_dataset_version.id", index=True)
    position: int = Column(sa_column=sa.Column(sa.Integer(), nullable=False))
    inputs: dict[str, Any] = Column(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    expected_response: str | None = Column(default=None, sa_column=sa.Column(sa.Text()))
    facts: list[str] = Column(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    guidelines: list[str] = Column(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    context: str | None = Column(default=None, sa_column=sa.Column(sa.Text()))
    source_trace_id: str | None = Column(default=None, sa_column=sa.Column(sa.String(32)))

    def canonical(self) -> dict[str, Any]:
        """Return the record's content (what the version's hash covers)."""
        return {
            "inputs": self.inputs,
            "expected_response": self.expected_response,
            "facts": self.facts,
            "guidelines": self.guidelines,
            "context": self.context,
        }


Scalar = str | int | float | bool


class EvalRecordCreate(BaseModel):
    """A record as a client writes it (JSON body or one JSONL line)."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Scalar] = Field(default_factory=dict, max_length=100)
    expected_response: str | None = Field(default=None, max_length=_TEXT)
    facts: list[str] = Field(default_factory=list, max_length=100)
    guidelines: list[str] = Field(default_factory=list, max_length=100)
    context: str | None = Field(default=None, max_length=_TEXT)


class EvalDatasetCreate(BaseModel):
    """A new dataset (its first version is created apart)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    description: str = Field(default="", max_length=4000)


class EvalVersionCreate(BaseModel):
    """A new version: empty, a copy of ``base_version``, and/or the given records."""

    model_config = ConfigDict(extra="forbid")

    base_version: int | None = Field(default=None, ge=1)
    records: list[EvalRecordCreate] = Field(default_factory=list, max_length=MAX_RECORDS)


def _parse_record(data: Any, where: str) -> EvalRecordCreate:
    try:
        return EvalRecordCreate.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        field = f"{where}.{path}" if path else where
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


def _csv_list(text: str, where: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise InvalidInput(f"{where}: not a JSON array of strings", field=where) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{where}: give a JSON array of strings", field=where)
        return value
    return [text]


def parse_records(content: bytes, *, kind: Literal["jsonl", "csv"]) -> list[EvalRecordCreate]:
    """Read records from a JSONL or CSV upload.

    JSONL: one :class:`EvalRecordCreate` object per line. CSV: a header row; the columns
    ``expected_response``, ``facts``, ``guidelines`` and ``context`` are expectations (``facts``
    and ``guidelines`` a JSON array or one item), every other column is an input.

    Raises:
        InvalidInput: Not UTF-8, a malformed line or row (named ``line N`` / ``row N``).
        PayloadTooLarge: More than :data:`MAX_RECORDS` records.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    records: list[EvalRecordCreate] = []
    if kind == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                raise InvalidInput(
                    f"line {number} is not JSON; write one record object per line",
                    field=f"file.line {number}",
                ) from None
            records.append(_parse_record(data, f"line {number}"))
            if len(records) > MAX_RECORDS:
                break
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise InvalidInput("the CSV file has no header row", field="file")
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise InvalidInput(
                    f"row {number} has more cells than the header", field=f"file.row {number}"
                )
            where = f"row {number}"
            row_data: dict[str, Any] = {
                "inputs": {k: v for k, v in row.items() if k not in _EXPECTATIONS},
                "expected_response": row.get("expected_response") or None,
                "context": row.get("context") or None,
                "facts": _csv_list(row.get("facts") or "", f"{where}.facts"),
                "guidelines": _csv_list(row.get("guidelines") or "", f"{where}.guidelines"),
            }
            records.append(_parse_record(row_data, where))
            if len(records) > MAX_RECORDS:
                break
    if len(records) > MAX_RECORDS:
        raise PayloadTooLarge(
            f"more than {MAX_RECORDS} records; split the file into versions", field="file"
        )
    if not records:
        raise InvalidInput("the file holds no records", field="file")
    return records


def create_dataset(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: EvalDatasetCreate,
    created_by: uuid.UUID | None,
) -> EvalDataset:
    """Create a dataset (no version yet).

    Raises:
        Conflict: The name is taken in the project.
    """
    taken = session.exec(
        select(EvalDataset.id).where(
            EvalDataset.project_id == project_id, EvalDataset.name == spec.name
        )
    ).first()
    if taken is not None:
        raise Conflict(f"dataset {spec.name!r} exists already; pick another name", field="name")
    dataset = EvalDataset(
        project_id=project_id,
        name=spec.name,
        description=spec.description,
        created_by=created_by,
    )
    session.add(dataset)
    session.flush()
    return dataset


def get_dataset(*, session: Session, project_id: uuid.UUID, name: str) -> EvalDataset:
    """Return a project's dataset by name, or raise :class:`NotFound`."""
    dataset = session.exec(
        select(EvalDataset).where(EvalDataset.project_id == project_id, EvalDataset.name == name)
    ).first()
    if dataset is None:
        raise NotFound(f"no evaluation dataset named {name!r} in this project")
    return dataset


def list_datasets(*, session: Session, project_id: uuid.UUID) -> list[EvalDataset]:
    """Return a project's datasets by name."""
    return list(
        session.exec(
            select(EvalDataset)
            .where(EvalDataset.project_id == project_id)
            .order_by(col(EvalDataset.name))
        ).all()
    )


def list_versions(*, session: Session, dataset: EvalDataset) -> list[EvalDatasetVersion]:
    """Return a dataset's versions, newest first."""
    return list(
        session.exec(
            select(EvalDatasetVersion)
            .where(EvalDatasetVersion.dataset_id == dataset.id)
            .order_by(sa.desc(col(EvalDatasetVersion.version)))
        ).all()
    )


def get_version(*, session: Session, dataset: EvalDataset, version: int) -> EvalDatasetVersion:
    """Return one version of a dataset, or raise :class:`NotFound`."""
    row = session.exec(
        select(EvalDatasetVersion).where(
            EvalDatasetVersion.dataset_id == dataset.id, EvalDatasetVersion.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"dataset {dataset.name!r} has no version {version}")
    return row


def records_of(*, session: Session, version: EvalDatasetVersion) -> list[EvalRecord]:
    """Return a version's records in order."""
    return list(
        session.exec(
            select(EvalRecord)
            .where(EvalRecord.version_id == version.id)
            .order_by(col(EvalRecord.position))
        ).all()
    )


def _insert(
    session: Session,
    version: EvalDatasetVersion,
    records: Sequence[EvalRecordCreate],
    traces: Sequence[str | None] = (),
) -> None:
    if version.record_count + len(records) > MAX_RECORDS:
        raise PayloadTooLarge(
            f"a version holds at most {MAX_RECORDS} records; it has {version.record_count}",
            field="records",
        )
    for offset, record in enumerate(records):
        session.add(
            EvalRecord(
                project_id=version.project_id,
                version_id=version.id,
                position=version.record_count + offset,
                source_trace_id=traces[offset] if offset < len(traces) else None,
                **record.model_dump(),
            )
        )
    version.record_count += len(records)
    session.add(version)
    session.flush()


def create_version(
    *,
    session: Session,
    dataset: EvalDataset,
    spec: EvalVersionCreate,
    source: str,
    created_by: uuid.UUID | None,
    traces: Sequence[str | None] = (),
) -> EvalDatasetVersion:
    """Open the dataset's next version with a base version's records and/or new ones.

    Raises:
        NotFound: ``base_version`` does not exist.
    """
    latest = session.exec(
        select(sa.func.max(EvalDatasetVersion.version)).where(
            EvalDatasetVersion.dataset_id == dataset.id
        )
    ).one()
    base = (
        None
        if spec.base_version is None
        else get_version(session=session, dataset=dataset, version=spec.base_version)
    )
    version = EvalDatasetVersion(
        project_id=dataset.project_id,
        dataset_id=dataset.id,
        version=(latest or 0) + 1,
        source=source,
        created_by=created_by,
    )
    session.add(version)
    session.flush()
    if base is not None:
        copied = records_of(session=session, version=base)
        _insert(
            session,
            version,
            [EvalRecordCreate.model_validate(r.canonical()) for r in copied],
            [r.source_trace_id for r in copied],
        )
    _insert(session, version, spec.records, traces)
    return version


def add_records(
    *,
    session: Session,
    version: EvalDatasetVersion,
    records: Sequence[EvalRecordCreate],
    traces: Sequence[str | None] = (),
) -> EvalDatasetVersion:
    """Append records to an open version.

    Raises:
        Conflict: The version is frozen (a run used it); open a new version instead.
    """
    if version.frozen_at is not None:
        raise Conflict(
            f"version {version.version} is frozen (a run used it on "
            f"{version.frozen_at.isoformat()}); create a new version with base_version "
            f"{version.version} and add the records there",
            field="version",
        )
    _insert(session, version, records, traces)
    return version


def _digest(records: Iterable[EvalRecord]) -> str:
    canonical = [r.canonical() for r in records]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def freeze_version(*, session: Session, version: EvalDatasetVersion) -> EvalDatasetVersion:
    """Freeze a version (once): no record changes after, and its content hash is fixed.

    Raises:
        InvalidInput: The version has no records.
    """
    if version.frozen_at is not None:
        return version
    if version.record_count == 0:
        raise InvalidInput(
            f"version {version.version} has no records; add some before running on it",
            field="dataset_version",
        )
    version.content_sha256 = _digest(records_of(session=session, version=version))
    version.frozen_at = utcnow()
    session.add(version)
    session.flush()
    return version


def _message_text(messages: Sequence[dict[str, Any]], roles: set[str]) -> str | None:
    texts = [
        str(m.get("content", "")) for m in messages if m.get("role") in roles and m.get("content")
    ]
    return texts[-1] if texts else None


def records_from_traces(
    *,
    session: Session,
    project_id: uuid.UUID,
    trace_ids: Sequence[str],
    sealer: Sealer | None = None,
    with_expected: bool = True,
) -> tuple[list[EvalRecordCreate], list[str | None]]:
    """Turn stored traces into records (input ← last user message, expected ← the answer).

    Each trace's first span with content that has a user message is used; texts pass through
    the project's redactor again. Returns the records and their trace ids.

    Raises:
        NotFound: A trace id is not in the project, or has no stored content (purged?).
    """
    redact = project_redactor(session=session, project_id=project_id, sealer=sealer)
    records: list[EvalRecordCreate] = []
    for trace_id in trace_ids:
        rows = session.exec(
            select(TraceContent, TraceSpan.start_at)
            .join(TraceSpan, col(TraceSpan.id) == col(TraceContent.span_row_id))
            .where(TraceContent.project_id == project_id, TraceContent.trace_id == trace_id)
            .order_by(col(TraceSpan.start_at))
        ).all()
        found = None
        for content, _ in rows:
            question = _message_text(content.input_messages, {"user"})
            if question is not None:
                found = (question, _message_text(content.output_messages, {"assistant"}))
                break
        if found is None:
            raise NotFound(
                f"trace {trace_id!r} has no stored user message in this project (unknown "
                "trace, or its content was purged by retention)"
            )
        question, answer = found
        expected = redact(answer).text if (answer is not None and with_expected) else None
        records.append(
            EvalRecordCreate(inputs={"input": redact(question).text}, expected_response=expected)
        )
    return records, list(trace_ids)
