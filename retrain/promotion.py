"""Going live: the one guarded way a model version becomes what a deployment slot serves.

**The rule.** A version is put live in a slot only when

1. *approval* — the project's approval rule for ``promote`` (N distinct approvers) is met by an
   approved request for this version (open one with :func:`request_promotion`, which bars its
   trainers up front);
2. *separation of duties* — none of its approvers trained or registered it (checked here again,
   even if the request forgot to bar them);
3. *gates* — the project's policy gates pass and no ``block_promotion`` is in force
   (:func:`retrain.gates.policy_gate`, applied here, never handed in by a caller).

Every path that changes what a slot serves goes through :func:`check_may_go_live`:

* :func:`promote` — deploy (the :class:`~retrain.deployers.Deployer`), record the deployment, a
  :class:`~retrain.champions.Promotion` row and ``model.promote`` in the audit log, then move
  MLflow's ``champion`` alias (last, moved back if the database work fails);
* :func:`promote_prompt` — a prompt version made live in an LLM deployment's slot: the same
  rule and records (audited ``prompt.promote``); the "deploy" checks the version's content
  against its hash and MLflow's prompt registry, and the prompt's alias named after the
  environment (``production``) moves in MLflow last;
* :func:`record_live` — an outside system reports it put a version live (``POST …/deployments``):
  the same rule, recorded and audited as ``deployment.record``; no deployer runs, aliases stay;
* :func:`rollback` — the version the live one replaced, audited as ``model.rollback`` (or
  ``prompt.rollback``, moving the prompt's environment alias instead of ``champion``); no new
  approval is asked (undoing must not wait), but the version must still hold its approval and
  the gates that judge a version by itself;
* :func:`redeploy` — the live version loaded again (a person or a policy action), judged like a
  rollback;
* :func:`mark_challenger` / :func:`clear_challenger` — MLflow's ``challenger`` alias names the
  version last evaluated against the champion; it moves to ``champion`` on promotion and is
  cleared when the version's promotion is rejected;
* :func:`carry_out` — an approved ``rollback`` or ``redeploy`` request performed (at once on
  approval, or by its requester: the project's choice), its outcome audited against the request.

:func:`lineage.deployments.record_deployment` is the storage step underneath; nothing else in
Warden calls it (``tests/api/test_going_live.py`` checks). Ending a deployment takes a version out
of service and puts nothing live, so it needs no approval.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from governance import Actor, append
from governance.approvals import (
    ApprovalAction,
    ApprovalRequest,
    ApprovalStatus,
    carried_out_actions,
    decisions_of,
    find_approved,
    record_outcome,
    request_approval,
)
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SeparationOfDuties,
    WardenError,
)
from lineage.model_versions import get_model_version
from lineage.models import Deployment, ModelVersion, VersionKind
from lineage.prompts import get_prompt
from retrain.champions import Promotion, slot_history
from retrain.deployers import Deployer, live_deployment, mlflow_coordinates
from retrain.gates import policy_gate
from retrain.llm_deployments import LlmDeployment
from retrain.mlflow_registry import CHALLENGER, CHAMPION, Registry
from retrain.pipelines import PipelineRun
from retrain.prompts import verify_prompt

__all__ = [
    "GoLive",
    "carry_out",
    "check_may_go_live",
    "clear_challenger",
    "mark_challenger",
    "promote",
    "promote_prompt",
    "record_live",
    "redeploy",
    "request_promotion",
    "rollback",
    "trainers_of",
    "version_aliases",
]

_TARGET_KIND = "model_version"


class GoLive(StrEnum):
    """How a version is put live in a slot; each is stored as a :class:`Promotion` ``kind``."""

    PROMOTE = "promote"
    RECORD = "record"
    ROLLBACK = "rollback"
    REDEPLOY = "redeploy"


_DOING = {
    GoLive.PROMOTE: "promoting",
    GoLive.RECORD: "recording a deployment of",
    GoLive.ROLLBACK: "rolling back to",
    GoLive.REDEPLOY: "redeploying",
}


def trainers_of(*, session: Session, model_version: ModelVersion) -> set[uuid.UUID]:
    """Return who trained or registered a version: they may not approve its promotion."""
    people = {model_version.registered_by} if model_version.registered_by else set()
    runs = session.exec(
        select(PipelineRun.requested_by).where(PipelineRun.model_version_id == model_version.id)
    ).all()
    return people | {r for r in runs if r is not None}


def request_promotion(
    *, session: Session, actor: Actor, model_version: ModelVersion, reason: str
) -> ApprovalRequest:
    """Ask for approval to promote a version, barring its trainers from deciding."""
    return request_approval(
        session=session,
        actor=actor,
        action=ApprovalAction.PROMOTE,
        target_kind=_TARGET_KIND,
        target_id=str(model_version.id),
        reason=reason,
        barred=trainers_of(session=session, model_version=model_version),
    )


def check_may_go_live(
    *,
    session: Session,
    model_version: ModelVersion,
    champion: ModelVersion | None,
    how: GoLive,
) -> uuid.UUID:
    """Apply the rule of the module doc to a version about to go live; return its approval's id.

    Args:
        session: The caller's session.
        model_version: The version that would serve.
        champion: What the slot serves now (the version a promotion must beat).
        how: The path it goes live by; a rollback or redeploy restores a version, so its gates
            compare with no champion and a ``block_promotion`` does not apply.

    Raises:
        PermissionDenied: No approved promotion request, or a policy gate refused it.
        SeparationOfDuties: Someone who trained or registered it approved it.
    """
    doing = _DOING[how]
    approval = find_approved(
        session=session,
        project_id=model_version.project_id,
        action=ApprovalAction.PROMOTE,
        target_kind=_TARGET_KIND,
        target_id=str(model_version.id),
    )
    if approval is None:
        raise PermissionDenied(
            f"{doing} {model_version.name!r} version {model_version.version} needs an approved "
            "request (rule: no version goes live without an approved promotion request); ask "
            f"with POST …/{'prompts' if model_version.kind == VersionKind.PROMPT else 'models'}"
            f"/{model_version.name}/versions/{model_version.version}"
            "/promotion-requests and wait for the approvers"
        )
    barred = trainers_of(session=session, model_version=model_version)
    approvers = {d.principal_id for d in decisions_of(session=session, approval_id=approval.id)}
    if approvers & barred:
        raise SeparationOfDuties(
            f"{doing} {model_version.name!r} version {model_version.version} is refused: it was "
            "approved by someone who trained or registered it (rule: separation of duties); a "
            "different person must approve it"
        )
    policy_gate(
        session=session,
        model_version=model_version,
        champion=champion,
        restoring=how in (GoLive.ROLLBACK, GoLive.REDEPLOY),
    )
    return approval.id


def _live(
    session: Session, project_id: uuid.UUID, deployment: str, environment: str
) -> tuple[Deployment, ModelVersion] | None:
    try:
        return live_deployment(
            session=session, project_id=project_id, deployment=deployment, environment=environment
        )
    except NotFound:
        return None


def _record(
    *,
    session: Session,
    project_id: uuid.UUID,
    version: ModelVersion,
    previous: ModelVersion | None,
    previous_of_new: uuid.UUID | None,
    spec: DeploymentCreate,
    how: GoLive,
    actor: Actor,
    deployer: str,
    reason: str,
    approval_id: uuid.UUID,
    request_id: uuid.UUID | None = None,
) -> tuple[Promotion, Deployment]:
    """Record the slot's new live version in lineage and its history, and audit it."""
    lineage_deployment = record_deployment(
        session=session, project_id=project_id, spec=spec, recorded_by=actor.principal_id
    )
    promotion = Promotion(
        project_id=project_id,
        model_name=version.name,
        deployment=spec.name,
        environment=spec.environment,
        kind=how,
        model_version_id=version.id,
        previous_version_id=previous_of_new,
        lineage_deployment_id=lineage_deployment.id,
        approval_id=approval_id,
        deployer=deployer,
        actor_id=actor.principal_id,
        actor_name=actor.name,
        reason=reason[:4000],
    )
    session.add(promotion)
    session.flush()
    detail: dict[str, Any] = {
        "model_name": version.name,
        "deployment": spec.name,
        "environment": spec.environment,
        "before": previous.version if previous else None,
        "after": version.version,
        "deployer": deployer,
        "approval_id": str(approval_id),
    }
    if request_id is not None:
        detail["request_id"] = str(request_id)
    if how is GoLive.RECORD:
        detail["model"] = f"{version.name}:{version.version}"
        detail["live_from"] = lineage_deployment.live_from.isoformat()
    kind = "prompt" if version.kind == VersionKind.PROMPT else "model"
    append(
        session=session,
        actor=actor,
        action="deployment.record" if how is GoLive.RECORD else f"{kind}.{how}",
        target=(
            f"deployment:{lineage_deployment.id}"
            if how is GoLive.RECORD
            else f"{_TARGET_KIND}:{version.id}"
        ),
        reason=reason[:4000],
        detail=detail,
        project_id=project_id,
    )
    return promotion, lineage_deployment


def _deploy(
    *,
    session: Session,
    registry: Registry | None,
    deployer: Deployer,
    version: ModelVersion,
    deployment: str,
    environment: str,
) -> str:
    """Make a version live with its kind's deployer; return the deployer's name.

    A prompt version is "deployed" by checking its content (applications fetch it from Warden);
    a model version by the chosen deployer.
    """
    if version.kind == VersionKind.PROMPT:
        prompt = get_prompt(
            session=session,
            project_id=version.project_id,
            name=version.name,
            version=version.version,
        )
        verify_prompt(session=session, registry=registry, prompt=prompt)
        return "prompt"
    deployer.deploy(model_version=version, deployment=deployment, environment=environment)
    return deployer.name


def _move_alias(
    session: Session, registry: Registry, version: ModelVersion, environment: str
) -> None:
    """Move ``champion`` for a model, the environment's alias for a prompt."""
    if version.kind == VersionKind.PROMPT:
        _move_prompt_alias(session, registry, version, environment)
    else:
        _move_champion(session, registry, version)


def _move_champion(session: Session, registry: Registry, version: ModelVersion) -> None:
    """Point ``champion`` at the version last; put it back if the database work fails."""
    name, mlflow_version = mlflow_coordinates(version)
    before = registry.alias_version(name, CHAMPION)
    registry.set_alias(name, CHAMPION, mlflow_version)
    try:
        if registry.alias_version(name, CHALLENGER) == mlflow_version:
            registry.delete_alias(name, CHALLENGER)
        session.flush()
    except BaseException:
        if before is None:
            registry.delete_alias(name, CHAMPION)
        else:
            registry.set_alias(name, CHAMPION, before)
        raise


def mark_challenger(*, registry: Registry, candidate: ModelVersion) -> None:
    """Point MLflow's ``challenger`` alias at a version just evaluated against the champion."""
    name, mlflow_version = mlflow_coordinates(candidate)
    registry.set_alias(name, CHALLENGER, mlflow_version)


def version_aliases(
    *, registry: Registry, versions: Sequence[ModelVersion]
) -> dict[uuid.UUID, list[str]]:
    """Return the MLflow aliases (``champion``, ``challenger``…) naming each of ``versions``.

    Versions that are not MLflow versions (external, or another URI) have none. One registry
    call per MLflow model.

    Raises:
        Unavailable: MLflow could not be asked.
    """
    coordinates: dict[uuid.UUID, tuple[str, str]] = {}
    for version in versions:
        try:
            coordinates[version.id] = mlflow_coordinates(version)
        except InvalidInput:
            continue  # not in MLflow: no alias can name it
    by_model = {name: registry.aliases(name) for name in {n for n, _ in coordinates.values()}}
    return {
        version_id: sorted(a for a, v in by_model[name].items() if v == number)
        for version_id, (name, number) in coordinates.items()
    }


def clear_challenger(*, registry: Registry, model_version: ModelVersion) -> bool:
    """Remove ``challenger`` if it names this version (its promotion was rejected); say if so."""
    try:
        name, mlflow_version = mlflow_coordinates(model_version)
    except InvalidInput:
        return False  # not an MLflow version: no alias to move
    if registry.alias_version(name, CHALLENGER) != mlflow_version:
        return False
    registry.delete_alias(name, CHALLENGER)
    return True


def _slot(deployment: str, environment: str, version: ModelVersion) -> DeploymentCreate:
    return DeploymentCreate(
        name=deployment,
        environment=environment,
        model_name=version.name,
        model_version=version.version,
    )


def promote(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_name: str,
    version: str,
    deployment: str,
    environment: str,
    actor: Actor,
    registry: Registry,
    deployer: Deployer,
    reason: str = "",
) -> Promotion:
    """Make ``model_name`` ``version`` live in a slot after its approval; see the module doc.

    Raises:
        NotFound: No such version in the project.
        PermissionDenied: No approved request for this version, or a gate blocked it.
        SeparationOfDuties: Someone who trained or registered it approved it.
        Conflict: It is live in the slot already, or the deployer refused it.
    """
    target = get_model_version(
        session=session, project_id=project_id, name=model_name, version=version
    )
    if target.kind == VersionKind.PROMPT:
        raise InvalidInput(
            f"{model_name!r} is a prompt; promote its versions to an LLM deployment with "
            "POST …/llm-deployments/{name}/promote",
            field="name",
        )
    live = _live(session, project_id, deployment, environment)
    previous = live[1] if live else None
    if previous is not None and previous.id == target.id:
        raise Conflict(
            f"version {version} of {model_name!r} is live in {deployment!r} ({environment}) already"
        )
    approval_id = check_may_go_live(
        session=session, model_version=target, champion=previous, how=GoLive.PROMOTE
    )
    deployer.deploy(model_version=target, deployment=deployment, environment=environment)
    promotion, _ = _record(
        session=session,
        project_id=project_id,
        version=target,
        previous=previous,
        previous_of_new=previous.id if previous else None,
        spec=_slot(deployment, environment, target),
        how=GoLive.PROMOTE,
        actor=actor,
        deployer=deployer.name,
        reason=reason,
        approval_id=approval_id,
    )
    _move_champion(session, registry, target)
    return promotion


def _move_prompt_alias(
    session: Session, registry: Registry, version: ModelVersion, alias: str
) -> None:
    """Point the prompt's environment alias at the version last; put it back if that fails."""
    before = registry.prompt_alias_version(version.name, alias)
    registry.set_prompt_alias(version.name, alias, version.version)
    try:
        session.flush()
    except BaseException:
        if before is None:
            registry.delete_prompt_alias(version.name, alias)
        else:
            registry.set_prompt_alias(version.name, alias, before)
        raise


def promote_prompt(
    *,
    session: Session,
    binding: LlmDeployment,
    version: str,
    actor: Actor,
    registry: Registry,
    reason: str = "",
) -> Promotion:
    """Make a version of the binding's prompt live in its slot after its approval.

    Raises:
        NotFound: No such version of the prompt.
        PermissionDenied: No approved request for this version, or a gate blocked it.
        SeparationOfDuties: Someone who registered it approved it.
        Conflict: It is live there already, or its content changed since it was registered.
    """
    prompt = get_prompt(
        session=session, project_id=binding.project_id, name=binding.prompt_name, version=version
    )
    target = prompt.version
    live = _live(session, binding.project_id, binding.name, binding.environment)
    previous = live[1] if live else None
    if previous is not None and previous.id == target.id:
        raise Conflict(
            f"version {version} of prompt {binding.prompt_name!r} is live in {binding.name!r} "
            f"({binding.environment}) already"
        )
    approval_id = check_may_go_live(
        session=session, model_version=target, champion=previous, how=GoLive.PROMOTE
    )
    verify_prompt(session=session, registry=registry, prompt=prompt)
    promotion, _ = _record(
        session=session,
        project_id=binding.project_id,
        version=target,
        previous=previous,
        previous_of_new=previous.id if previous else None,
        spec=_slot(binding.name, binding.environment, target),
        how=GoLive.PROMOTE,
        actor=actor,
        deployer="prompt",
        reason=reason,
        approval_id=approval_id,
    )
    _move_prompt_alias(session, registry, target, binding.environment)
    return promotion


def record_live(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: DeploymentCreate,
    actor: Actor,
    reason: str = "",
) -> Deployment:
    """Record that an outside system put a version live, under the rule of the module doc.

    Recording the version already live in the slot returns that deployment unchanged. No
    deployer runs and MLflow's aliases do not move: the outside system serves it.

    Raises:
        InvalidInput: The version is not registered, or ``live_from`` rewrites history.
        PermissionDenied: No approved request for this version, or a gate blocked it.
        SeparationOfDuties: Someone who trained or registered it approved it.
    """
    target = session.exec(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == spec.model_name,
            ModelVersion.version == spec.model_version,
        )
    ).first()
    if target is None:
        raise InvalidInput(
            f"model {spec.model_name!r} version {spec.model_version!r} is not registered in this "
            "project; register it under …/models/{name}/versions first",
            field="model_version",
        )
    live = _live(session, project_id, spec.name, spec.environment)
    previous = live[1] if live else None
    approval_id = check_may_go_live(
        session=session, model_version=target, champion=previous, how=GoLive.RECORD
    )
    if live is not None and previous is not None and previous.id == target.id:
        return live[0]
    _, recorded = _record(
        session=session,
        project_id=project_id,
        version=target,
        previous=previous,
        previous_of_new=previous.id if previous else None,
        spec=spec,
        how=GoLive.RECORD,
        actor=actor,
        deployer="external",
        reason=reason,
        approval_id=approval_id,
    )
    return recorded


def rollback(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment: str,
    environment: str,
    actor: Actor,
    registry: Registry,
    deployer: Deployer,
    reason: str = "",
    request_id: uuid.UUID | None = None,
) -> Promotion:
    """Put the version the live one replaced back live in the slot (one call, audited).

    ``request_id`` names the approved ``rollback`` request this carries out, if any.

    Raises:
        NotFound: Nothing is live in the slot.
        Conflict: The live version replaced nothing (or was not put there through Warden), so
            there is nothing to go back to.
        PermissionDenied: The earlier version lost its approval or fails a gate.
        SeparationOfDuties: The earlier version was approved by its trainer.
    """
    live = _live(session, project_id, deployment, environment)
    if live is None:
        raise NotFound(
            f"nothing is live in deployment {deployment!r} ({environment}): nothing was promoted "
            "there, or its deployment was ended"
        )
    history = slot_history(
        session=session, project_id=project_id, deployment=deployment, environment=environment
    )
    latest = history[0] if history else None
    if (
        latest is None
        or latest.lineage_deployment_id != live[0].id
        or latest.previous_version_id is None
    ):
        raise Conflict(
            f"the live version of {deployment!r} ({environment}) replaced nothing; "
            "there is no earlier version to roll back to"
        )
    current = live[1]
    target = session.get(ModelVersion, latest.previous_version_id)
    assert target is not None
    approval_id = check_may_go_live(
        session=session, model_version=target, champion=current, how=GoLive.ROLLBACK
    )
    # Where the target itself came from, so a second rollback goes one step further back.
    made_target_live = next((p for p in history if p.model_version_id == target.id), None)
    used = _deploy(
        session=session,
        registry=registry,
        deployer=deployer,
        version=target,
        deployment=deployment,
        environment=environment,
    )
    promotion, _ = _record(
        session=session,
        project_id=project_id,
        version=target,
        previous=current,
        previous_of_new=made_target_live.previous_version_id if made_target_live else None,
        spec=_slot(deployment, environment, target),
        how=GoLive.ROLLBACK,
        actor=actor,
        deployer=used,
        reason=reason or f"roll back from version {current.version}",
        approval_id=approval_id,
        request_id=request_id,
    )
    _move_alias(session, registry, target, environment)
    return promotion


def redeploy(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment: str,
    environment: str,
    actor: Actor,
    deployer: Deployer,
    reason: str = "",
    request_id: uuid.UUID | None = None,
    registry: Registry | None = None,
) -> ModelVersion:
    """Deploy the slot's live version again (reloaded, hash-checked), audited as ``model.redeploy``.

    ``request_id`` names the approved ``redeploy`` request this carries out, if any. A prompt
    version's content is checked again (against MLflow's prompt registry too when ``registry``
    is given), audited as ``prompt.redeploy``.

    Raises:
        NotFound: Nothing is live in the slot.
        PermissionDenied: The live version holds no approval or fails a gate.
        SeparationOfDuties: It was approved by its trainer.
    """
    live = _live(session, project_id, deployment, environment)
    if live is None:
        raise NotFound(f"nothing is live in {deployment!r} ({environment}) to redeploy")
    version = live[1]
    approval_id = check_may_go_live(
        session=session, model_version=version, champion=version, how=GoLive.REDEPLOY
    )
    _deploy(
        session=session,
        registry=registry,
        deployer=deployer,
        version=version,
        deployment=deployment,
        environment=environment,
    )
    detail: dict[str, Any] = {
        "deployment": deployment,
        "environment": environment,
        "version": version.version,
        "approval_id": str(approval_id),
    }
    if request_id is not None:
        detail["request_id"] = str(request_id)
    append(
        session=session,
        actor=actor,
        action="prompt.redeploy" if version.kind == VersionKind.PROMPT else "model.redeploy",
        target=f"{_TARGET_KIND}:{version.id}",
        reason=reason,
        detail=detail,
        project_id=project_id,
    )
    return version


def _slot_of(request: ApprovalRequest) -> tuple[str, str]:
    """Return the ``(deployment, environment)`` a rollback or redeploy request names."""
    if request.target_kind != "deployment":
        raise InvalidInput(
            f"a {request.action} request must target a deployment (target_kind 'deployment', "
            f"target_id '<name>/<environment>'), not {request.target_kind!r}",
            field="target_kind",
        )
    deployment, _, environment = request.target_id.partition("/")
    return deployment, environment or "production"


def carry_out(
    *,
    session: Session,
    actor: Actor,
    request: ApprovalRequest,
    registry: Registry,
    deployer: Deployer,
) -> tuple[dict[str, Any], WardenError | None]:
    """Perform an approved ``rollback`` or ``redeploy`` request and audit the outcome against it.

    The work runs in a savepoint: when the going-live rule or the deployer refuses it, nothing
    changes but the request's recorded outcome (``failed``, with the error), and it may be carried
    out again later. Returns the outcome stored on the request and the refusal, if any.

    Raises:
        InvalidInput: The request is not a rollback or redeploy, or names no deployment.
        Conflict: It is not approved, or it was carried out already.
    """
    action = ApprovalAction(request.action)
    if action not in carried_out_actions():
        raise InvalidInput(
            f"a {action.value} request is not carried out by Warden; it unlocks its own call "
            "(e.g. …/promote for a promotion)",
            field="action",
        )
    if request.status != ApprovalStatus.APPROVED:
        raise Conflict(f"the request is {request.status}; only an approved request is carried out")
    if request.carried_out_at is not None:
        raise Conflict(f"the request was carried out already at {request.carried_out_at}")
    deployment, environment = _slot_of(request)
    reason = f"approved {action.value} request {request.id}: {request.reason}"
    outcome: dict[str, Any] = {"type": action.value, "deployment": deployment}
    refused: WardenError | None = None
    try:
        with session.begin_nested():
            if action is ApprovalAction.ROLLBACK:
                promotion = rollback(
                    session=session,
                    project_id=request.project_id,
                    deployment=deployment,
                    environment=environment,
                    actor=actor,
                    registry=registry,
                    deployer=deployer,
                    reason=reason,
                    request_id=request.id,
                )
                outcome["promotion_id"] = str(promotion.id)
            else:
                version = redeploy(
                    session=session,
                    project_id=request.project_id,
                    deployment=deployment,
                    environment=environment,
                    actor=actor,
                    deployer=deployer,
                    reason=reason,
                    request_id=request.id,
                    registry=registry,
                )
                outcome["model_version"] = version.version
    except WardenError as error:
        refused = error
        outcome |= {"outcome": "failed", "error": error.detail}
    else:
        outcome["outcome"] = "done"
    record_outcome(session=session, actor=actor, request=request, outcome=outcome)
    return outcome, refused
