"""Policies: declarative documents that turn monitor findings into decisions, and gate promotions.

A policy is a versioned document (JSON, or YAML text) of a project::

    rules:
      - name: retrain-on-drift
        scope: {model: income}                      # or deployment / environment; {} = project
        when:                                       # a leaf, or all / any of conditions
          all:
            - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
            - {monitor: drift, metric: "*", scope: "column:age", status: alert}
        consecutive_runs: 2                         # hold on the last 2 runs of a monitor
        cooldown_seconds: 21600                     # fire at most once per 6 h per scope
        actions:
          - {type: alert}
          - {type: retrain, pipeline: income-train}
    gates:                                          # promotion gates (see retrain.gates)
      - {type: metric_vs_champion, metric: accuracy, max_drop: 0.01}
      - {type: fairness_max, metric: demographic_parity_difference, max: 0.1}
      - {type: model_card, fields: [description, feature_schema, metrics]}
      - {type: approvers, min: 2}

:func:`parse_document` validates a document and names the exact path of the first error
(``rules[0].when.all[1].threshold``), which the API returns as a 422 problem's ``field``.

:func:`evaluate` is pure: from the findings history, the policies, the prior decisions (for
cooldowns) and the time, it returns :class:`Decision` values and touches nothing. The loop in
:mod:`retrain.loop` executes them; ``POST …/policies/{id}:dry-run`` only shows them.

Storage: a :class:`Policy` has numbered :class:`PolicyVersion` rows, never edited; the policy's
``active_version`` is the one that decides. When the project has an approval rule for
``policy_change``, a new version waits for an approved request before it can be activated.
Services here never commit.
"""

from __future__ import annotations

import fnmatch
import json
import math
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, select

from governance.actors import Actor
from governance.approvals import (
    ApprovalAction,
    ApprovalRule,
    find_approved,
    request_approval,
)
from governance.audit import append
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lineage.tables import Record
from monitors.findings import Finding, Status

__all__ = [
    "ACTION_TYPES",
    "GATE_TYPES",
    "Action",
    "AlertAction",
    "AllCondition",
    "AnyCondition",
    "ApproversGate",
    "BlockPromotionAction",
    "Condition",
    "Decision",
    "FairnessMaxGate",
    "Gate",
    "LeafCondition",
    "MetricVsChampionGate",
    "ModelCardGate",
    "OpenIncidentAction",
    "Policy",
    "PolicyDocument",
    "PolicyRef",
    "PolicyVersion",
    "PriorDecision",
    "RedeployAction",
    "RetrainAction",
    "RollbackAction",
    "Rule",
    "RunFindings",
    "Scope",
    "activate_version",
    "active_policies",
    "add_version",
    "create_policy",
    "evaluate",
    "finding_id",
    "get_policy",
    "get_version",
    "list_policies",
    "list_versions",
    "load_source",
    "parse_document",
    "set_enabled",
]

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_MAX_COOLDOWN = 30 * 24 * 3600


# --- the document ---------------------------------------------------------------------------


class Scope(BaseModel):
    """Where a rule applies; a field left out matches everything."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=256)
    deployment: str | None = Field(default=None, min_length=1, max_length=256)
    environment: str | None = Field(default=None, min_length=1, max_length=64)


class LeafCondition(BaseModel):
    """A test on the findings of one run: a comparison with a threshold, or a status.

    ``metric`` and ``scope`` are shell-style patterns (``column:*``). The leaf holds when at
    least one finding of the run matches and passes the test.
    """

    model_config = ConfigDict(extra="forbid")

    monitor: str | None = Field(default=None, min_length=1, max_length=64)
    metric: str = Field(default="*", min_length=1, max_length=128)
    scope: str = Field(default="*", min_length=1, max_length=256)
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    status: Literal["warn", "alert"] | None = None


class AllCondition(BaseModel):
    """Holds when every condition holds."""

    all: list[Condition]


class AnyCondition(BaseModel):
    """Holds when at least one condition holds."""

    any: list[Condition]


Condition = LeafCondition | AllCondition | AnyCondition
AllCondition.model_rebuild()
AnyCondition.model_rebuild()


class AlertAction(BaseModel):
    """Route the triggering findings through the project's alert rules (channels, incidents)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["alert"]


class OpenIncidentAction(BaseModel):
    """Open (or update) an incident for the findings via the project's alert rules."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["open_incident"]


class RetrainAction(BaseModel):
    """Start a run of a registered pipeline (one run per model, whatever the storm)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["retrain"]
    pipeline: str = Field(pattern=_NAME)
    parameters: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=100
    )


class RollbackAction(BaseModel):
    """Roll a deployment back one version: ask for approval (``request``) or do it (``perform``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["rollback"]
    deployment: str | None = Field(default=None, min_length=1, max_length=64)
    environment: str = Field(default="production", min_length=1, max_length=64)
    mode: Literal["request", "perform"] = "request"


class RedeployAction(BaseModel):
    """Deploy the live version again (reload it): ask for approval or do it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["redeploy"]
    deployment: str | None = Field(default=None, min_length=1, max_length=64)
    environment: str = Field(default="production", min_length=1, max_length=64)
    mode: Literal["request", "perform"] = "request"


class BlockPromotionAction(BaseModel):
    """Refuse promotions of the model for a while (a gate reads the block)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["block_promotion"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    duration_seconds: int = Field(default=86_400, ge=60, le=_MAX_COOLDOWN)


Action = (
    AlertAction
    | OpenIncidentAction
    | RetrainAction
    | RollbackAction
    | RedeployAction
    | BlockPromotionAction
)

ACTION_TYPES: dict[str, type[BaseModel]] = {
    "alert": AlertAction,
    "block_promotion": BlockPromotionAction,
    "open_incident": OpenIncidentAction,
    "redeploy": RedeployAction,
    "retrain": RetrainAction,
    "rollback": RollbackAction,
}


class MetricVsChampionGate(BaseModel):
    """The candidate's metric may trail the champion's by at most ``max_drop`` (absolute)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["metric_vs_champion"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str = Field(default="accuracy", min_length=1, max_length=128)
    max_drop: float = Field(default=0.01, ge=0, le=1, allow_inf_nan=False)


class FairnessMaxGate(BaseModel):
    """A fairness metric of the candidate (every sensitive feature, or one) at most ``max``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["fairness_max"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str = Field(default="demographic_parity_difference", min_length=1, max_length=128)
    feature: str | None = Field(default=None, min_length=1, max_length=256)
    max: float = Field(default=0.1, ge=0, allow_inf_nan=False)


CardField = Literal["description", "feature_schema", "metrics", "parameters", "source_run"]


def _card_defaults() -> list[CardField]:
    return ["description", "feature_schema", "metrics"]


class ModelCardGate(BaseModel):
    """The version's card (its registered metadata) must fill every listed field."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["model_card"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    fields: list[
        Literal["description", "feature_schema", "metrics", "parameters", "source_run"]
    ] = Field(default_factory=_card_defaults, min_length=1)


class ApproversGate(BaseModel):
    """The promotion's approved request must carry at least ``min`` distinct approvers."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["approvers"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    min: int = Field(default=2, ge=1, le=10)


Gate = MetricVsChampionGate | FairnessMaxGate | ModelCardGate | ApproversGate

GATE_TYPES: dict[str, type[BaseModel]] = {
    "approvers": ApproversGate,
    "fairness_max": FairnessMaxGate,
    "metric_vs_champion": MetricVsChampionGate,
    "model_card": ModelCardGate,
}


class Rule(BaseModel):
    """When a condition holds in scope (N runs), take the actions (at most once per cooldown)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    scope: Scope = Field(default_factory=Scope)
    when: Condition
    consecutive_runs: int = Field(default=1, ge=1, le=100)
    cooldown_seconds: int = Field(default=0, ge=0, le=_MAX_COOLDOWN)
    actions: list[Action] = Field(min_length=1, max_length=10)


class PolicyDocument(BaseModel):
    """A whole policy: rules over findings and promotion gates."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=4000)
    rules: list[Rule] = Field(default_factory=list, max_length=50)
    gates: list[Gate] = Field(default_factory=list, max_length=20)


# --- parsing with exact paths -----------------------------------------------------------------


def _join(path: str, loc: Sequence[int | str]) -> str:
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else part)
    return path


def _invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path or 'document'}: {message}", field=path or "document")


def _check(model: type[BaseModel], data: Any, path: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = _join(path, [p for p in first["loc"] if isinstance(p, int | str)])
        raise _invalid(where, str(first["msg"])) from None


def _mapping(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _invalid(path, f"must be an object, not {type(data).__name__}")
    return data


def _list(data: Any, path: str, *, least: int, most: int) -> list[Any]:
    if not isinstance(data, list):
        raise _invalid(path, f"must be a list, not {type(data).__name__}")
    if not least <= len(data) <= most:
        raise _invalid(path, f"must hold {least} to {most} items, not {len(data)}")
    return data


def _condition(data: Any, path: str, depth: int = 0) -> Condition:
    data = _mapping(data, path)
    if depth > 8:
        raise _invalid(path, "conditions nest at most 8 deep; flatten them")
    for combinator in ("all", "any"):
        if combinator in data:
            extra = sorted(set(data) - {combinator})
            if extra:
                raise _invalid(_join(path, [extra[0]]), f"not allowed beside '{combinator}'")
            items = _list(data[combinator], _join(path, [combinator]), least=1, most=20)
            parts = [
                _condition(item, _join(path, [combinator, i]), depth + 1)
                for i, item in enumerate(items)
            ]
            if combinator == "all":
                return AllCondition.model_construct(all=parts)
            return AnyCondition.model_construct(any=parts)
    leaf: LeafCondition = _check(LeafCondition, data, path)
    if leaf.status is None and (leaf.op is None or leaf.threshold is None):
        missing = "op" if leaf.op is None else "threshold"
        raise _invalid(
            _join(path, [missing]),
            "a condition needs 'op' and 'threshold' (or 'status'), or 'all' / 'any' of conditions",
        )
    if leaf.status is not None and (leaf.op is not None or leaf.threshold is not None):
        raise _invalid(_join(path, ["status"]), "give either 'status' or 'op' + 'threshold'")
    return leaf


def _typed(data: Any, path: str, types: dict[str, type[BaseModel]]) -> Any:
    data = _mapping(data, path)
    kind = data.get("type")
    if kind not in types:
        raise _invalid(_join(path, ["type"]), f"must be one of {', '.join(sorted(types))}")
    return _check(types[kind], data, path)


def _rule(data: Any, path: str) -> Rule:
    data = _mapping(data, path)
    if "when" not in data:
        raise _invalid(_join(path, ["when"]), "a rule needs a 'when' condition")
    when = _condition(data["when"], _join(path, ["when"]))
    if "actions" not in data:
        raise _invalid(_join(path, ["actions"]), "a rule needs at least one action")
    items = _list(data["actions"], _join(path, ["actions"]), least=1, most=10)
    actions = [
        _typed(item, _join(path, ["actions", i]), ACTION_TYPES) for i, item in enumerate(items)
    ]
    plain = {k: v for k, v in data.items() if k not in ("when", "actions")}
    placeholder: dict[str, Any] = {"all": []}
    checked: Rule = _check(
        Rule, {**plain, "when": placeholder, "actions": [{"type": "alert"}]}, path
    )
    return checked.model_copy(update={"when": when, "actions": actions})


def parse_document(data: Any) -> PolicyDocument:
    """Validate a policy document, naming the exact path of the first error.

    Raises:
        InvalidInput: With ``field`` set to the path, e.g. ``rules[0].when.all[1].threshold``.
    """
    data = _mapping(data, "")
    allowed = {"description", "rules", "gates"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _invalid(unknown[0], f"unknown key; a policy has {', '.join(sorted(allowed))}")
    rules = [
        _rule(item, _join("rules", [i]))
        for i, item in enumerate(_list(data.get("rules", []), "rules", least=0, most=50))
    ]
    names = [r.name for r in rules]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _invalid(f"rules[{i}].name", f"rule name {name!r} is used twice")
    gates = [
        _typed(item, _join("gates", [i]), GATE_TYPES)
        for i, item in enumerate(_list(data.get("gates", []), "gates", least=0, most=20))
    ]
    if not rules and not gates:
        raise _invalid("rules", "a policy needs at least one rule or gate")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 4000:
        raise _invalid("description", "must be text of at most 4000 characters")
    return PolicyDocument.model_construct(description=description, rules=rules, gates=gates)


def load_source(source: str) -> Any:
    """Read a document from YAML or JSON text (JSON is YAML), naming the line of a syntax error.

    Raises:
        InvalidInput: The text is not YAML/JSON (``field`` is ``source``).
    """
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput(
            f"the policy is not valid YAML or JSON{where}: {getattr(error, 'problem', error)}",
            field="source",
        ) from None


def _dump(document: PolicyDocument) -> dict[str, Any]:
    def condition(c: Condition) -> dict[str, Any]:
        if isinstance(c, AllCondition):
            return {"all": [condition(x) for x in c.all]}
        if isinstance(c, AnyCondition):
            return {"any": [condition(x) for x in c.any]}
        return c.model_dump(exclude_none=True, exclude_defaults=True)

    return {
        "description": document.description,
        "rules": [
            {
                **r.model_dump(mode="json", exclude={"when", "actions"}),
                "when": condition(r.when),
                "actions": [a.model_dump(mode="json") for a in r.actions],
            }
            for r in document.rules
        ],
        "gates": [g.model_dump(mode="json") for g in document.gates],
    }


# --- pure evaluation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunFindings:
    """The findings of one monitor run, and what the monitor watches."""

    run_id: str
    source_id: str
    at: datetime
    findings: tuple[Finding, ...]
    model: str | None = None
    deployment: str | None = None
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy as evaluation needs it: which one, which version, what it says."""

    policy_id: uuid.UUID
    name: str
    version: int
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class PriorDecision:
    """A decision that fired earlier (cooldowns count from it)."""

    policy_id: uuid.UUID
    rule: str
    scope_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """What one rule decided for one scope: ``fire`` (act) or ``cooldown`` (held back)."""

    policy_id: uuid.UUID
    policy_name: str
    policy_version: int
    rule: str
    scope_key: str
    status: Literal["fire", "cooldown"]
    actions: tuple[Action, ...]
    run_ids: tuple[str, ...]
    finding_ids: tuple[str, ...]
    source_id: str
    model: str | None
    deployment: str | None
    environment: str | None
    reason: str
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view (for the dry-run answer and the decision row)."""
        return {
            "policy_id": str(self.policy_id),
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "scope_key": self.scope_key,
            "status": self.status,
            "actions": [a.model_dump(mode="json") for a in self.actions],
            "run_ids": list(self.run_ids),
            "finding_ids": list(self.finding_ids),
            "source_id": self.source_id,
            "model": self.model,
            "deployment": self.deployment,
            "environment": self.environment,
            "reason": self.reason,
        }


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RANK = {Status.WARN: 1, Status.ALERT: 2}


def finding_id(run_id: str, finding: Finding) -> str:
    """Return the stable id of a finding: its run plus monitor, metric and scope."""
    return f"{run_id}:{finding.monitor}.{finding.metric}@{finding.scope}"


def _leaf(leaf: LeafCondition, findings: Sequence[Finding]) -> list[Finding]:
    hits = []
    for f in findings:
        if leaf.monitor is not None and f.monitor != leaf.monitor:
            continue
        if not fnmatch.fnmatchcase(f.metric, leaf.metric):
            continue
        if not fnmatch.fnmatchcase(f.scope, leaf.scope):
            continue
        if leaf.status is not None:
            if _RANK.get(f.status, 0) >= _RANK[Status(leaf.status)]:
                hits.append(f)
        elif (
            leaf.op is not None
            and leaf.threshold is not None
            and f.value is not None
            and math.isfinite(f.value)
            and _OPS[leaf.op](f.value, leaf.threshold)
        ):
            hits.append(f)
    return hits


def _holds(condition: Condition, findings: Sequence[Finding]) -> tuple[bool, list[Finding]]:
    if isinstance(condition, LeafCondition):
        hits = _leaf(condition, findings)
        return bool(hits), hits
    parts = [_holds(c, findings) for c in getattr(condition, "all", None) or condition.any]  # type: ignore[union-attr]
    evidence = [f for ok, hits in parts if ok for f in hits]
    if isinstance(condition, AllCondition):
        return all(ok for ok, _ in parts), evidence
    return any(ok for ok, _ in parts), evidence


def _in_scope(scope: Scope, run: RunFindings) -> bool:
    return all(
        wanted is None or wanted == have
        for wanted, have in (
            (scope.model, run.model),
            (scope.deployment, run.deployment),
            (scope.environment, run.environment),
        )
    )


def _scope_key(run: RunFindings) -> str:
    if run.model is None and run.deployment is None:
        return f"source={run.source_id}"
    return f"model={run.model or '-'};deployment={run.deployment or '-'}/{run.environment or '-'}"


def evaluate(
    *,
    history: Sequence[RunFindings],
    policies: Sequence[PolicyRef],
    prior: Sequence[PriorDecision],
    now: datetime,
) -> list[Decision]:
    """Decide, for every rule and every monitor in its scope, whether to act now.

    A rule fires for a monitor when its condition holds on each of that monitor's last
    ``consecutive_runs`` runs (fewer runs: no decision). It is held back (``cooldown``) when the
    same rule fired for the same scope (model, deployment) less than ``cooldown_seconds`` before
    ``now`` — earlier in ``prior`` or earlier in this very evaluation. Pure: reads nothing else.
    """
    by_source: dict[str, list[RunFindings]] = {}
    for run in sorted(history, key=lambda r: r.at):
        by_source.setdefault(run.source_id, []).append(run)
    fired: dict[tuple[uuid.UUID, str, str], datetime] = {}
    for p in prior:
        key = (p.policy_id, p.rule, p.scope_key)
        fired[key] = max(fired.get(key, p.at), p.at)
    decisions: list[Decision] = []
    for policy in policies:
        for rule in policy.document.rules:
            for source_id, runs in sorted(by_source.items()):
                latest = runs[-1]
                if not _in_scope(rule.scope, latest):
                    continue
                window = runs[-rule.consecutive_runs :]
                if len(window) < rule.consecutive_runs:
                    continue
                results = [_holds(rule.when, run.findings) for run in window]
                if not all(ok for ok, _ in results):
                    continue
                evidence = results[-1][1]
                key = (policy.policy_id, rule.name, _scope_key(latest))
                last = fired.get(key)
                cooling = (
                    last is not None
                    and rule.cooldown_seconds > 0
                    and now - last < timedelta(seconds=rule.cooldown_seconds)
                )
                if cooling:
                    assert last is not None
                    reason = (
                        f"rule {rule.name!r} fired for {key[2]} at {last.isoformat()}; "
                        f"cooldown is {rule.cooldown_seconds} s"
                    )
                else:
                    reason = (
                        f"rule {rule.name!r} held on the last {rule.consecutive_runs} run(s) "
                        f"of monitor {source_id}"
                    )
                    fired[key] = now
                finding_ids = tuple(
                    dict.fromkeys(
                        finding_id(run.run_id, f)
                        for run, (_, hits) in zip(window, results, strict=True)
                        for f in hits
                    )
                )
                decisions.append(
                    Decision(
                        policy_id=policy.policy_id,
                        policy_name=policy.name,
                        policy_version=policy.version,
                        rule=rule.name,
                        scope_key=key[2],
                        status="cooldown" if cooling else "fire",
                        actions=tuple(rule.actions),
                        run_ids=tuple(run.run_id for run in window),
                        finding_ids=finding_ids,
                        source_id=source_id,
                        model=latest.model,
                        deployment=latest.deployment,
                        environment=latest.environment,
                        reason=reason,
                        findings=tuple(
                            {(f.monitor, f.metric, f.scope): f for f in evidence}.values()
                        ),
                    )
                )
    return decisions


# --- storage ----------------------------------------------------------------------------------


class Policy(Record, table=True):
    """A named policy of a project; its content lives in numbered versions."""

    __tablename__ = "governance_policy"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    name: str = SQLField(sa_column=sa.Column(sa.String(63), nullable=False))
    active_version: int | None = SQLField(default=None)
    latest_version: int = SQLField(default=0, nullable=False)
    enabled: bool = SQLField(default=True, nullable=False)
    created_by: str = SQLField(sa_column=sa.Column(sa.String(256), nullable=False))


class PolicyVersion(Record, table=True):
    """One immutable version of a policy document, and the approval that cleared it, if any."""

    __tablename__ = "governance_policy_version"
    __table_args__ = (sa.UniqueConstraint("policy_id", "version"),)

    policy_id: uuid.UUID = SQLField(foreign_key="governance_policy.id", index=True)
    version: int = SQLField(nullable=False)
    document: dict[str, Any] = SQLField(sa_column=sa.Column(sa.JSON(), nullable=False))
    source: str = SQLField(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    created_by: str = SQLField(sa_column=sa.Column(sa.String(256), nullable=False))
    approval_id: uuid.UUID | None = SQLField(default=None)

    def parsed(self) -> PolicyDocument:
        """Return the stored document, validated again."""
        return parse_document(self.document)


_TARGET = "policy_version"


def _approval_required(session: Session, project_id: uuid.UUID) -> bool:
    rule = session.exec(
        select(ApprovalRule).where(
            ApprovalRule.project_id == project_id,
            ApprovalRule.action == ApprovalAction.POLICY_CHANGE,
        )
    ).first()
    return rule is not None


def _document(document: Any, source: str | None) -> tuple[PolicyDocument, dict[str, Any], str]:
    if source is not None:
        raw = load_source(source)
    elif document is not None:
        raw = document
    else:
        raise InvalidInput(
            "give the policy as 'document' (an object) or 'source' (YAML/JSON text)",
            field="document",
        )
    parsed = parse_document(raw)
    stored = _dump(parsed)
    json.dumps(stored)
    return parsed, stored, source or ""


def _new_version(
    *,
    session: Session,
    policy: Policy,
    actor: Actor,
    stored: dict[str, Any],
    source: str,
    reason: str,
) -> PolicyVersion:
    policy.latest_version += 1
    version = PolicyVersion(
        policy_id=policy.id,
        version=policy.latest_version,
        document=stored,
        source=source[:100_000],
        created_by=actor.name,
    )
    session.add(version)
    session.flush()
    if _approval_required(session, policy.project_id):
        request = request_approval(
            session=session,
            actor=actor.in_project(policy.project_id),
            action=ApprovalAction.POLICY_CHANGE,
            target_kind=_TARGET,
            target_id=str(version.id),
            reason=reason or f"policy {policy.name!r} version {version.version}",
        )
        version.approval_id = request.id
    else:
        policy.active_version = version.version
    session.add_all([policy, version])
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.version",
        target=f"policy:{policy.id}",
        reason=reason[:4000],
        detail={
            "name": policy.name,
            "version": version.version,
            "active_version": policy.active_version,
            "approval_id": str(version.approval_id) if version.approval_id else None,
        },
        project_id=policy.project_id,
    )
    return version


def create_policy(
    *,
    session: Session,
    project_id: uuid.UUID,
    actor: Actor,
    name: str,
    document: Any = None,
    source: str | None = None,
    reason: str = "",
) -> tuple[Policy, PolicyVersion]:
    """Create a policy with its first version (active at once, or pending an approval).

    Raises:
        InvalidInput: The document is invalid (``field`` is the exact path).
        Conflict: The name is taken in the project.
    """
    _, stored, text = _document(document, source)
    taken = session.exec(
        select(Policy).where(Policy.project_id == project_id, Policy.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"policy {name!r} exists already; add a version to it", field="name")
    policy = Policy(project_id=project_id, name=name, created_by=actor.name)
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.create",
        target=f"policy:{policy.id}",
        detail={"name": name},
        project_id=project_id,
    )
    version = _new_version(
        session=session, policy=policy, actor=actor, stored=stored, source=text, reason=reason
    )
    return policy, version


def add_version(
    *,
    session: Session,
    policy: Policy,
    actor: Actor,
    document: Any = None,
    source: str | None = None,
    reason: str = "",
) -> PolicyVersion:
    """Store a new version of a policy (active at once, or pending an approval)."""
    _, stored, text = _document(document, source)
    return _new_version(
        session=session, policy=policy, actor=actor, stored=stored, source=text, reason=reason
    )


def get_policy(*, session: Session, project_id: uuid.UUID, policy_id: uuid.UUID) -> Policy:
    """Return a policy of the project, or raise :class:`NotFound`."""
    policy = session.get(Policy, policy_id)
    if policy is None or policy.project_id != project_id:
        raise NotFound(f"no policy {policy_id} in this project; list policies first")
    return policy


def list_policies(*, session: Session, project_id: uuid.UUID) -> list[Policy]:
    """Return a project's policies by name."""
    query = select(Policy).where(Policy.project_id == project_id).order_by(col(Policy.name))
    return list(session.exec(query).all())


def get_version(*, session: Session, policy: Policy, version: int) -> PolicyVersion:
    """Return one version of a policy, or raise :class:`NotFound`."""
    row = session.exec(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"policy {policy.name!r} has no version {version}")
    return row


def list_versions(*, session: Session, policy: Policy) -> list[PolicyVersion]:
    """Return a policy's versions, oldest first."""
    query = (
        select(PolicyVersion)
        .where(PolicyVersion.policy_id == policy.id)
        .order_by(col(PolicyVersion.version))
    )
    return list(session.exec(query).all())


def activate_version(
    *, session: Session, policy: Policy, version: int, actor: Actor
) -> PolicyVersion:
    """Make a version the one that decides (approved first, when the project requires it).

    Raises:
        NotFound: No such version.
        PermissionDenied: The project requires approval and the version has none approved.
    """
    row = get_version(session=session, policy=policy, version=version)
    if _approval_required(session, policy.project_id):
        approved = find_approved(
            session=session,
            project_id=policy.project_id,
            action=ApprovalAction.POLICY_CHANGE,
            target_kind=_TARGET,
            target_id=str(row.id),
        )
        if approved is None:
            raise PermissionDenied(
                f"version {version} of policy {policy.name!r} needs an approved policy_change "
                f"request before it decides; approval {row.approval_id} is not approved yet"
            )
    before = policy.active_version
    policy.active_version = version
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.activate",
        target=f"policy:{policy.id}",
        detail={"before": before, "after": version},
        project_id=policy.project_id,
    )
    return row


def set_enabled(*, session: Session, policy: Policy, enabled: bool, actor: Actor) -> Policy:
    """Turn a policy on or off (off: it decides nothing and gates nothing); audited."""
    before = policy.enabled
    policy.enabled = enabled
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.enable" if enabled else "policy.disable",
        target=f"policy:{policy.id}",
        detail={"before": before, "after": enabled},
        project_id=policy.project_id,
    )
    return policy


def active_policies(*, session: Session, project_id: uuid.UUID) -> list[PolicyRef]:
    """Return the enabled policies of a project at their active versions."""
    refs = []
    for policy in list_policies(session=session, project_id=project_id):
        if not policy.enabled or policy.active_version is None:
            continue
        row = get_version(session=session, policy=policy, version=policy.active_version)
        refs.append(
            PolicyRef(
                policy_id=policy.id, name=policy.name, version=row.version, document=row.parsed()
            )
        )
    return refs
