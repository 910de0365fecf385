"""The policy language: a versioned document of rules over findings and promotion gates.

A policy document (JSON, or YAML text) reads::

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
      - name: roll-back-refusals                    # an LLM deployment's prompt, like a model
        scope: {deployment: support-bot}
        when: {monitor: text_descriptors, metric: refusal_rate, op: ">", threshold: 0.1}
        actions: [{type: rollback_prompt, mode: perform}]
    gates:                                          # promotion gates (see retrain.gates)
      - {type: metric_vs_champion, metric: accuracy, max_drop: 0.01}
      - {type: metric_no_worse, metric: accuracy, max_drop: 0.005, confidence: 0.95}
      - {type: fairness_max, metric: demographic_parity_difference, max: 0.1}
      - {type: model_card, fields: [description, feature_schema, metrics]}
      - {type: approvers, min: 2}
      - {type: eval_min, dataset: faq, scorer: token_f1, min: 0.6}          # prompt versions
      - {type: eval_max_drop, dataset: faq, scorer: token_f1, max_drop: 0.05}

:func:`parse_document` validates what a person wrote and names the exact path of the first
error (``rules[0].when.all[1].threshold``), which the API returns as a 422 problem's ``field``.
A version stores :func:`dump_document`'s canonical form; :func:`load_document` reads it back as
the typed :class:`PolicyDocument` without parsing it again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lineage.errors import InvalidInput

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
    "EvalMaxDropGate",
    "EvalMinGate",
    "FairnessMaxGate",
    "Gate",
    "LeafCondition",
    "MetricNoWorseGate",
    "MetricVsChampionGate",
    "ModelCardGate",
    "OpenIncidentAction",
    "PolicyDocument",
    "RedeployAction",
    "RetrainAction",
    "RollbackAction",
    "RollbackPromptAction",
    "Rule",
    "Scope",
    "dump_document",
    "error_line",
    "load_document",
    "load_source",
    "parse_document",
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


class RollbackPromptAction(BaseModel):
    """Roll an LLM deployment back to the prompt version its live one replaced.

    The same approval rules as a model rollback: ``request`` opens an approval request,
    ``perform`` does it at once, provided the earlier version still holds its approval and
    passes the gates. Refused (as a failed action) when the slot serves a model, not a prompt.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["rollback_prompt"]
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
    | RollbackPromptAction
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
    "rollback_prompt": RollbackPromptAction,
}


class MetricVsChampionGate(BaseModel):
    """The candidate's metric may trail the champion's by at most ``max_drop`` (absolute)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["metric_vs_champion"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str = Field(default="accuracy", min_length=1, max_length=128)
    max_drop: float = Field(default=0.01, ge=0, le=1, allow_inf_nan=False)


class MetricNoWorseGate(BaseModel):
    """With the stated confidence, the candidate's metric trails the champion's by ≤ ``max_drop``.

    Judged on the bootstrap intervals the evaluation stored: the candidate's lower bound must
    reach the champion's value less ``max_drop``, so a lucky point estimate on a small holdout
    does not pass. Only 0.95 is offered because that is the interval Warden computes.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["metric_no_worse"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str = Field(default="accuracy", min_length=1, max_length=128)
    max_drop: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    confidence: float = Field(default=0.95, description="0.95: the interval Warden computes.")

    @model_validator(mode="after")
    def _computed_level(self) -> MetricNoWorseGate:
        if self.confidence != 0.95:
            raise ValueError("confidence: Warden stores 95 % intervals, so only 0.95 is offered")
        return self


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


_DATASET = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class EvalMinGate(BaseModel):
    """A prompt version's evaluation on ``dataset``: the ``scorer``'s mean at least ``min``.

    Judged on the version's latest finished evaluation run on the dataset (a run of the version
    itself, not of a variant with overrides), with no scorer errors.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["eval_min"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    dataset: str = Field(pattern=_DATASET)
    scorer: str = Field(min_length=1, max_length=63)
    min: float = Field(ge=-1, le=1, allow_inf_nan=False)


class EvalMaxDropGate(BaseModel):
    """The ``scorer``'s mean may trail the live version's by at most ``max_drop``.

    Both runs must be on the same dataset version; passes when nothing is live.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["eval_max_drop"]
    model: str | None = Field(default=None, min_length=1, max_length=256)
    dataset: str = Field(pattern=_DATASET)
    scorer: str = Field(min_length=1, max_length=63)
    max_drop: float = Field(default=0.0, ge=0, le=2, allow_inf_nan=False)


Gate = (
    MetricVsChampionGate
    | MetricNoWorseGate
    | FairnessMaxGate
    | ModelCardGate
    | ApproversGate
    | EvalMinGate
    | EvalMaxDropGate
)

GATE_TYPES: dict[str, type[BaseModel]] = {
    "approvers": ApproversGate,
    "eval_max_drop": EvalMaxDropGate,
    "eval_min": EvalMinGate,
    "fairness_max": FairnessMaxGate,
    "metric_no_worse": MetricNoWorseGate,
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
    except RecursionError:
        raise InvalidInput(
            "the policy nests deeper than a policy document can (lists or mappings inside each "
            "other thousands of levels deep); write rules a few levels deep",
            field="source",
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput(
            f"the policy is not valid YAML or JSON{where}: {getattr(error, 'problem', error)}",
            field="source",
        ) from None


def dump_document(document: PolicyDocument) -> dict[str, Any]:
    """Return the canonical JSON form of a parsed document (what a version stores)."""

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


def load_document(stored: dict[str, Any]) -> PolicyDocument:
    """Read back a document stored by :func:`dump_document` (parsed once, when it was stored).

    The stored form is the canonical dump of a document :func:`parse_document` accepted, so it
    is read with the typed models alone: the path-naming checks ran when the version was stored.
    """
    return PolicyDocument.model_validate(stored)


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return parts


def error_line(source: str, error: InvalidInput) -> int | None:
    """Return the 1-based line of ``source`` an error of :func:`parse_document` points at.

    A syntax error has its line from the YAML parser; a validation error names a path
    (``rules[0].when.all[1].threshold``), found in the text's node tree: the line of the value
    at that path, or of the nearest enclosing node when the path names a missing key. ``None``
    when the text cannot be read as YAML at all (too deep) or has no node there.
    """
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError as syntax:
        mark = getattr(syntax, "problem_mark", None)
        if mark is None:
            return None
        return min(int(mark.line) + 1, max(1, len(source.splitlines())))  # not past the end
    except RecursionError:
        return None
    if node is None:
        return None
    field = error.field if error.field not in (None, "source", "document") else ""
    for part in _path_parts(field or ""):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = [value for key, value in node.value if getattr(key, "value", None) == part]
            if not found:
                keys = [key for key, _ in node.value if getattr(key, "value", None) == part]
                return int((keys or [node])[0].start_mark.line) + 1
            node = found[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
    return int(node.start_mark.line) + 1
