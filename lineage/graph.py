"""Graph queries: Marquez's lineage graph, a model version's provenance, a dataset version's impact.

Other rooms (reports, dashboard, demo, promotion) call these; they are read-only and scoped to
one project. Two graphs are answered:

* :func:`lineage_graph` is the *design-level* graph Marquez draws (datasets ↔ jobs), extended
  with the model versions jobs trained or judged (an evaluation job → its prompt version; the
  version's ``evaluatedBy`` names each run and the dataset versions it read) and the deployment
  slots serving them. Node ids are
  ``dataset:<namespace>:<name>``, ``job:<namespace>:<name>``, ``model:<name>:<version>`` and
  ``deployment:<environment>:<name>``; ``depth`` counts edges from the start node, both ways.
* :func:`model_provenance` and :func:`dataset_impact` walk the *instance-level* edges (runs and
  dataset versions), which say exactly which data made which model. Judging is not making: the
  evaluation runs that judged a version (``run_evaluates``) and the dataset versions they read
  are listed apart (``Provenance.evaluations``, ``Impact.judged``) and the walk does not go
  through them, so a dataset that only judged a version is not among its training data.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from lineage.deployments import live_deployments
from lineage.errors import InvalidInput, NotFound
from lineage.model_versions import get_model_version, get_model_version_by_id
from lineage.models import (
    Dataset,
    DatasetVersion,
    Deployment,
    Edge,
    EdgeKind,
    Job,
    ModelVersion,
    Run,
)

__all__ = [
    "MAX_DEPTH",
    "Impact",
    "Provenance",
    "dataset_impact",
    "dataset_impact_all_versions",
    "get_dataset_version",
    "lineage_graph",
    "model_provenance",
    "model_provenance_by_name",
]

MAX_DEPTH = 100

_UPSTREAM = (EdgeKind.RUN_INPUT, EdgeKind.RUN_OUTPUT, EdgeKind.RUN_MODEL)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Everything upstream of a model version: the runs and dataset versions that made it.

    Attributes:
        model_version: The model version asked about.
        runs: Every upstream run, oldest first.
        dataset_versions: Every upstream dataset version, oldest first.
        jobs: The jobs of those runs (and of the evaluations), by id.
        datasets: The datasets of those versions (and of the evaluation data), by id.
        evaluations: The evaluation runs that judged the version, oldest first.
        evaluation_dataset_versions: The dataset versions those runs read, oldest first.
    """

    model_version: ModelVersion
    runs: list[Run]
    dataset_versions: list[DatasetVersion]
    jobs: dict[uuid.UUID, Job] = field(default_factory=dict)
    datasets: dict[uuid.UUID, Dataset] = field(default_factory=dict)
    evaluations: list[Run] = field(default_factory=list)
    evaluation_dataset_versions: list[DatasetVersion] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Impact:
    """Everything downstream of a dataset version, and what of it is live.

    Attributes:
        dataset_version: The dataset version asked about.
        runs: Every downstream run, oldest first.
        dataset_versions: Every downstream dataset version (not the start), oldest first.
        model_versions: Every model version trained downstream, oldest first.
        deployments: Deployments serving one of those model versions at ``as_of``.
        as_of: The moment ``deployments`` describes.
        jobs: The jobs of the runs, by id.
        datasets: The datasets of the versions (the start's included), by id.
        covered: The versions the walk started from (one, or every version of the dataset;
            ``dataset_version`` is then the latest).
        judged: The model (prompt) versions judged by evaluation runs that read the data
            (downstream runs among ``runs``), oldest first.
    """

    dataset_version: DatasetVersion
    runs: list[Run]
    dataset_versions: list[DatasetVersion]
    model_versions: list[ModelVersion]
    deployments: list[Deployment]
    as_of: datetime | None
    jobs: dict[uuid.UUID, Job] = field(default_factory=dict)
    datasets: dict[uuid.UUID, Dataset] = field(default_factory=dict)
    covered: list[DatasetVersion] = field(default_factory=list)
    judged: list[ModelVersion] = field(default_factory=list)


def _judging(
    session: Session, project_id: uuid.UUID, *, runs: set[uuid.UUID], versions: set[uuid.UUID]
) -> list[Edge]:
    """Return the ``run_evaluates`` edges from ``runs`` or onto ``versions``."""
    ends = []
    if runs:
        ends.append(col(Edge.source_id).in_(runs))
    if versions:
        ends.append(col(Edge.target_id).in_(versions))
    if not ends:
        return []
    return list(
        session.exec(
            select(Edge).where(
                Edge.project_id == project_id,
                Edge.kind == EdgeKind.RUN_EVALUATES,
                or_(*ends),
            )
        ).all()
    )


def _inputs_of(session: Session, project_id: uuid.UUID, runs: set[uuid.UUID]) -> set[uuid.UUID]:
    """Return the dataset versions ``runs`` read."""
    if not runs:
        return set()
    return set(
        session.exec(
            select(Edge.source_id).where(
                Edge.project_id == project_id,
                Edge.kind == EdgeKind.RUN_INPUT,
                col(Edge.target_id).in_(runs),
            )
        ).all()
    )


def _walk(
    *, session: Session, project_id: uuid.UUID, start: uuid.UUID | set[uuid.UUID], upstream: bool
) -> dict[EdgeKind, set[uuid.UUID]]:
    """Return the ids reached from ``start`` (one id or several) over run-level edges, by kind."""
    reached: dict[EdgeKind, set[uuid.UUID]] = defaultdict(set)
    starts = start if isinstance(start, set) else {start}
    seen = set(starts)
    frontier = set(starts)
    near = Edge.target_id if upstream else Edge.source_id
    while frontier:
        edges = session.exec(
            select(Edge).where(
                Edge.project_id == project_id,
                col(Edge.kind).in_(_UPSTREAM),
                col(near).in_(frontier),
            )
        ).all()
        frontier = set()
        for edge in edges:
            other = edge.source_id if upstream else edge.target_id
            reached[EdgeKind(edge.kind)].add(other)
            if other not in seen:
                seen.add(other)
                frontier.add(other)
    return reached


def _by_id(session: Session, table: Any, ids: Iterable[uuid.UUID]) -> list[Any]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = session.exec(select(table).where(col(table.id).in_(wanted))).all()
    return sorted(rows, key=lambda row: row.created_at)


def _jobs_and_datasets(
    session: Session, runs: list[Run], versions: list[DatasetVersion]
) -> tuple[dict[uuid.UUID, Job], dict[uuid.UUID, Dataset]]:
    jobs = {j.id: j for j in _by_id(session, Job, {r.job_id for r in runs})}
    datasets = {d.id: d for d in _by_id(session, Dataset, {v.dataset_id for v in versions})}
    return jobs, datasets


def model_provenance(
    *, session: Session, project_id: uuid.UUID, model_version_id: uuid.UUID
) -> Provenance:
    """Return every run and dataset version upstream of a model version, however far back.

    Raises:
        NotFound: No such model version in the project.
    """
    model_version = get_model_version_by_id(
        session=session, project_id=project_id, model_version_id=model_version_id
    )
    reached = _walk(session=session, project_id=project_id, start=model_version.id, upstream=True)
    runs: list[Run] = _by_id(
        session, Run, reached[EdgeKind.RUN_MODEL] | reached[EdgeKind.RUN_OUTPUT]
    )
    versions: list[DatasetVersion] = _by_id(session, DatasetVersion, reached[EdgeKind.RUN_INPUT])
    judging = {
        e.source_id for e in _judging(session, project_id, runs=set(), versions={model_version.id})
    }
    evaluations: list[Run] = _by_id(session, Run, judging)
    read: list[DatasetVersion] = _by_id(
        session, DatasetVersion, _inputs_of(session, project_id, judging)
    )
    jobs, datasets = _jobs_and_datasets(session, [*runs, *evaluations], [*versions, *read])
    return Provenance(
        model_version=model_version,
        runs=runs,
        dataset_versions=versions,
        jobs=jobs,
        datasets=datasets,
        evaluations=evaluations,
        evaluation_dataset_versions=read,
    )


def dataset_impact(
    *,
    session: Session,
    project_id: uuid.UUID,
    dataset_version_id: uuid.UUID,
    as_of: datetime | None = None,
) -> Impact:
    """Return what a dataset version fed: runs, derived data, model versions, live deployments.

    Args:
        session: The caller's session.
        project_id: The project to look in.
        dataset_version_id: The dataset version whose consequences are wanted.
        as_of: When to read "live" deployments; now when unset.

    Raises:
        NotFound: No such dataset version in the project.
    """
    start = session.get(DatasetVersion, dataset_version_id)
    if start is None or start.project_id != project_id:
        raise NotFound(f"no dataset version {dataset_version_id} in this project")
    return _impact(session=session, project_id=project_id, starts=[start], as_of=as_of)


def dataset_impact_all_versions(
    *,
    session: Session,
    project_id: uuid.UUID,
    namespace: str,
    name: str,
    as_of: datetime | None = None,
) -> Impact:
    """Return what *any* version of a dataset fed: the union of every version's impact.

    "Which live deployments consumed dataset X" must not depend on which version trained them.

    Raises:
        NotFound: No such dataset in the project, or it has no version yet.
    """
    latest = get_dataset_version(
        session=session, project_id=project_id, namespace=namespace, name=name
    )
    versions = list(
        session.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == latest.dataset_id)
            .order_by(col(DatasetVersion.created_at))
        ).all()
    )
    return _impact(session=session, project_id=project_id, starts=versions, as_of=as_of)


def _impact(
    *,
    session: Session,
    project_id: uuid.UUID,
    starts: list[DatasetVersion],
    as_of: datetime | None,
) -> Impact:
    start_ids = {v.id for v in starts}
    reached = _walk(session=session, project_id=project_id, start=start_ids, upstream=False)
    runs: list[Run] = _by_id(session, Run, reached[EdgeKind.RUN_INPUT])
    versions: list[DatasetVersion] = _by_id(
        session, DatasetVersion, reached[EdgeKind.RUN_OUTPUT] - start_ids
    )
    models: list[ModelVersion] = _by_id(session, ModelVersion, reached[EdgeKind.RUN_MODEL])
    judged: list[ModelVersion] = _by_id(
        session,
        ModelVersion,
        {
            e.target_id
            for e in _judging(session, project_id, runs={r.id for r in runs}, versions=set())
        },
    )
    model_ids = {m.id for m in models}
    live = [
        d
        for d in live_deployments(session=session, project_id=project_id, as_of=as_of)
        if d.model_version_id in model_ids
    ]
    jobs, datasets = _jobs_and_datasets(session, runs, [*starts, *versions])
    return Impact(
        dataset_version=max(starts, key=lambda v: v.created_at),
        runs=runs,
        dataset_versions=versions,
        model_versions=models,
        deployments=live,
        as_of=as_of,
        jobs=jobs,
        datasets=datasets,
        covered=list(starts),
        judged=judged,
    )


def get_dataset_version(
    *,
    session: Session,
    project_id: uuid.UUID,
    namespace: str,
    name: str,
    version: str | None = None,
) -> DatasetVersion:
    """Return a dataset version by its names, the latest one when ``version`` is unset.

    Raises:
        NotFound: No such dataset, or no such version of it, in the project.
    """
    dataset = session.exec(
        select(Dataset).where(
            Dataset.project_id == project_id,
            Dataset.namespace == namespace,
            Dataset.name == name,
        )
    ).first()
    if dataset is None:
        raise NotFound(
            f"no dataset {name!r} in namespace {namespace!r} in this project; "
            "datasets appear when OpenLineage events name them"
        )
    query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if version is not None:
        query = query.where(DatasetVersion.version == version)
    found = session.exec(query.order_by(col(DatasetVersion.created_at).desc())).first()
    if found is None:
        raise NotFound(
            f"dataset {namespace}:{name} has no version {version!r}"
            if version
            else f"dataset {namespace}:{name} has no version yet; a run must read or write it"
        )
    return found


# ---- Marquez's graph -------------------------------------------------------------------------


def _dataset_node(dataset: Dataset) -> str:
    return f"dataset:{dataset.namespace}:{dataset.name}"


def _job_node(job: Job) -> str:
    return f"job:{job.namespace}:{job.name}"


def _model_node(model_version: ModelVersion) -> str:
    return f"model:{model_version.name}:{model_version.version}"


def _deployment_node(deployment: Deployment) -> str:
    return f"deployment:{deployment.environment}:{deployment.name}"


class _Nodes:
    """Every node of a project's design-level graph, with data and adjacency, built in memory."""

    def __init__(self, session: Session, project_id: uuid.UUID) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.kind: dict[str, str] = {}
        self.out: dict[str, set[str]] = defaultdict(set)
        self.into: dict[str, set[str]] = defaultdict(set)
        by_id: dict[uuid.UUID, str] = {}
        for dataset in session.exec(select(Dataset).where(Dataset.project_id == project_id)):
            key = by_id[dataset.id] = _dataset_node(dataset)
            self._add(key, "DATASET", {"namespace": dataset.namespace, "name": dataset.name})
        for job in session.exec(select(Job).where(Job.project_id == project_id)):
            key = by_id[job.id] = _job_node(job)
            self._add(key, "JOB", {"namespace": job.namespace, "name": job.name})
        models = session.exec(select(ModelVersion).where(ModelVersion.project_id == project_id))
        for model in models:
            key = by_id[model.id] = _model_node(model)
            self._add(
                key,
                "MODEL",
                {
                    "name": model.name,
                    "version": model.version,
                    "artifactUri": model.artifact_uri,
                    "artifactSha256": model.artifact_sha256,
                },
            )
        live = {d.id for d in live_deployments(session=session, project_id=project_id)}
        for deployment in session.exec(
            select(Deployment).where(Deployment.project_id == project_id)
        ):
            key = by_id[deployment.id] = _deployment_node(deployment)
            self._add(
                key, "DEPLOYMENT", {"name": deployment.name, "environment": deployment.environment}
            )
            if deployment.id in live:
                self.data[key]["liveModel"] = by_id[deployment.model_version_id]
        run_jobs = dict(
            session.exec(select(Run.id, Run.job_id).where(Run.project_id == project_id)).all()
        )
        kinds = (
            EdgeKind.JOB_INPUT,
            EdgeKind.JOB_OUTPUT,
            EdgeKind.RUN_MODEL,
            EdgeKind.RUN_EVALUATES,
            EdgeKind.SERVES,
        )
        for edge in session.exec(
            select(Edge).where(Edge.project_id == project_id, col(Edge.kind).in_(kinds))
        ):
            source = run_jobs.get(edge.source_id, edge.source_id)
            if source in by_id and edge.target_id in by_id:
                self.out[by_id[source]].add(by_id[edge.target_id])
                self.into[by_id[edge.target_id]].add(by_id[source])
                if edge.kind == EdgeKind.RUN_EVALUATES:
                    self._judged(session, by_id, edge)

    def _judged(self, session: Session, by_id: dict[uuid.UUID, str], edge: Edge) -> None:
        """Name, on a version's node, the run that judged it and the dataset versions it read."""
        run = session.get(Run, edge.source_id)
        if run is None:
            return
        read = session.exec(
            select(DatasetVersion)
            .join(Edge, Edge.source_id == DatasetVersion.id)  # type: ignore[arg-type]
            .where(Edge.kind == EdgeKind.RUN_INPUT, Edge.target_id == run.id)
        ).all()
        self.data[by_id[edge.target_id]].setdefault("evaluatedBy", []).append(
            {
                "runId": str(run.run_id),
                "job": by_id[run.job_id],
                "state": str(run.state),
                "datasetVersions": [
                    {"dataset": by_id[v.dataset_id], "version": v.version}
                    for v in sorted(read, key=lambda v: v.created_at)
                    if v.dataset_id in by_id
                ],
            }
        )

    def _add(self, key: str, kind: str, data: dict[str, Any]) -> None:
        self.kind[key] = kind
        self.data[key] = {"id": key, "type": kind, **data}

    def resolve(self, node_id: str) -> str:
        """Return the node key for ``node_id`` or raise; namespaces may contain ``:``."""
        if node_id in self.kind:
            return node_id
        prefix = node_id.split(":", 1)[0]
        if prefix not in ("dataset", "job", "model", "deployment"):
            raise InvalidInput(
                f"nodeId {node_id!r} is not valid: use dataset:<namespace>:<name>, "
                "job:<namespace>:<name> or model:<name>:<version>",
                field="nodeId",
            )
        raise NotFound(f"no node {node_id!r} in this project's lineage")


def lineage_graph(
    *, session: Session, project_id: uuid.UUID, node_id: str, depth: int = 20
) -> dict[str, Any]:
    """Return the graph around ``node_id`` in Marquez's shape: ``{"graph": [node, …]}``.

    Each node is ``{"id", "type", "data", "inEdges", "outEdges"}`` with edges as
    ``{"origin", "destination"}``, as Marquez's ``GET /api/v1/lineage`` returns them, so its UI and
    clients read Warden's answer. Nodes up to ``depth`` edges away, in either direction, are kept.

    Raises:
        InvalidInput: ``node_id`` is malformed or ``depth`` is outside 0…:data:`MAX_DEPTH`.
        NotFound: No such node in the project.
    """
    if not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be between 0 and {MAX_DEPTH}", field="depth")
    nodes = _Nodes(session, project_id)
    start = nodes.resolve(node_id)
    kept = {start}
    frontier = {start}
    for _ in range(depth):
        frontier = {n for key in frontier for n in nodes.out[key] | nodes.into[key]} - kept
        if not frontier:
            break
        kept |= frontier
    graph = [
        {
            "id": key,
            "type": nodes.kind[key],
            "data": nodes.data[key],
            "inEdges": [
                {"origin": o, "destination": key} for o in sorted(nodes.into[key]) if o in kept
            ],
            "outEdges": [
                {"origin": key, "destination": d} for d in sorted(nodes.out[key]) if d in kept
            ],
        }
        for key in sorted(kept)
    ]
    return {"graph": graph}


def model_provenance_by_name(
    *, session: Session, project_id: uuid.UUID, name: str, version: str
) -> Provenance:
    """Return :func:`model_provenance` for a model version named by name and version."""
    model_version = get_model_version(
        session=session, project_id=project_id, name=name, version=version
    )
    return model_provenance(
        session=session, project_id=project_id, model_version_id=model_version.id
    )
