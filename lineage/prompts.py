"""Prompt versions: an LLM application's model versions (a template and the model it targets).

A prompt version is a :class:`~lineage.models.ModelVersion` of kind ``prompt`` plus one
:class:`~lineage.models.PromptVersion` row holding its artifact: a text template or a list of
chat messages with ``{{variable}}`` placeholders, and the model configuration it was written for.
Both are immutable. Because it *is* a model version, approvals, separation of duties, gates,
deployments, promotions and the audit log apply to it unchanged.

Aliases are environments: ``name@production`` is the version live in a ``production`` slot (the
latest to go live when several slots serve the prompt), moved only by a promotion;
``name@latest`` is the newest registered version. No alias can be set by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.model_versions import MODEL_NAME_PATTERN
from lineage.models import Deployment, ModelVersion, PromptVersion, VersionKind
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page

__all__ = [
    "LATEST",
    "ChatMessage",
    "ModelSettings",
    "Prompt",
    "PromptVersionCreate",
    "ResponseFormat",
    "content_hash",
    "find_variables",
    "get_prompt",
    "list_prompt_names",
    "list_prompts",
    "next_prompt_version",
    "page_prompts",
    "prompt_at",
    "prompt_uri",
    "register_prompt_version",
    "render",
    "resolve_alias",
]

LATEST = "latest"
"""The alias naming a prompt's newest registered version (every other alias is an environment)."""

_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
_OPEN = "{{"
MAX_TEMPLATE_CHARS = 100_000


class ChatMessage(BaseModel):
    """One message of a chat template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)]


class ResponseFormat(BaseModel):
    """The response format asked of the model (OpenAI's ``response_format``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema_when_asked(self) -> ResponseFormat:
        """Require a named schema for ``json_schema`` and none for the others."""
        if self.type == "json_schema":
            if not self.json_schema or not isinstance(self.json_schema.get("name"), str):
                raise ValueError(
                    "type json_schema needs json_schema with a 'name' and a 'schema' object"
                )
            if not isinstance(self.json_schema.get("schema"), dict):
                raise ValueError("json_schema.schema must be a JSON Schema object")
        elif self.json_schema is not None:
            raise ValueError(f"json_schema is only for type json_schema, not {self.type!r}")
        return self


class ModelSettings(BaseModel):
    """The model configuration a prompt version was written for.

    Attributes:
        provider: Who serves the model (``openai``, ``azure``, ``vllm``, …), for people and prices.
        name: The model's name at the provider, e.g. ``gpt-4o-mini``.
        temperature: Sampling temperature, 0-2.
        max_tokens: The most tokens an answer may have.
        response_format: Text, a JSON object, or JSON conforming to a schema.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    response_format: ResponseFormat | None = None


def find_variables(template: str | list[ChatMessage], *, field: str = "template") -> list[str]:
    """Return the variables a template uses, sorted; refuse a malformed placeholder.

    Raises:
        InvalidInput: A ``{{`` opens no valid ``{{name}}`` placeholder (names: letters, digits
            and ``_``, not starting with a digit), naming the field (``template.1.content``).
    """
    parts = (
        [(field, template)]
        if isinstance(template, str)
        else [(f"{field}.{i}.content", m.content) for i, m in enumerate(template)]
    )
    found: set[str] = set()
    for where, text in parts:
        position = text.find(_OPEN)
        while position != -1:
            match = _VARIABLE.match(text, position)
            if match is None:
                snippet = text[position : position + 24]
                raise InvalidInput(
                    f"the placeholder at character {position} ({snippet!r}) is not a variable: "
                    "write {{name}} with a name of letters, digits and '_' not starting with a "
                    "digit, closed by }}",
                    field=where,
                )
            found.add(match[1])
            position = text.find(_OPEN, match.end())
    return sorted(found)


_UNION_TAGS = ("str", "constrained-str", "list[ChatMessage]")


def _one_template(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a text or chat template, reporting errors at ``template`` (not a union member)."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("the template is empty; write the prompt's text")
    if isinstance(value, list) and not 1 <= len(value) <= 100:
        raise ValueError("a chat template has 1 to 100 messages")
    if not isinstance(value, str | list):
        raise ValueError("give a text template (a string) or chat messages ({role, content})")
    try:
        return handler(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in _UNION_TAGS)
        raise ValueError(f"{where or 'template'}: {first['msg']}") from None


Template = Annotated[
    Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS)] | list[ChatMessage],
    WrapValidator(_one_template),
]


class PromptVersionCreate(BaseModel):
    """A new prompt version (the name comes from the URL, the version number from the registry).

    Attributes:
        template: A text template, or a list of chat messages, with ``{{variable}}`` placeholders.
        model: The model configuration the template was written for.
        commit_message: What changed and why, for the reviewers of its promotion.
        variables: The variables the template must use, if the client wants them checked; the
            template's own are stored either way.
    """

    model_config = ConfigDict(extra="forbid")

    template: Template
    model: ModelSettings
    commit_message: Annotated[str, Field(min_length=1, max_length=4000)]
    variables: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]] | None = None

    def template_type(self) -> Literal["text", "chat"]:
        """Return ``text`` or ``chat``."""
        return "text" if isinstance(self.template, str) else "chat"

    def stored_template(self) -> str | list[dict[str, str]]:
        """Return the template as stored and registered (plain JSON)."""
        if isinstance(self.template, str):
            return self.template
        return [m.model_dump() for m in self.template]

    def stored_model(self) -> dict[str, Any]:
        """Return the model configuration as stored (unset options left out)."""
        return self.model.model_dump(mode="json", exclude_none=True)

    def checked_variables(self) -> list[str]:
        """Return the template's variables, matching the declared ones when given.

        Raises:
            InvalidInput: A placeholder is malformed, or the declared variables differ.
        """
        found = find_variables(self.template)
        if self.variables is not None and sorted(set(self.variables)) != found:
            missing = sorted(set(self.variables) - set(found))
            extra = sorted(set(found) - set(self.variables))
            raise InvalidInput(
                f"the template's variables {found} differ from those declared: declared but not "
                f"used {missing}, used but not declared {extra}; fix the template or the list",
                field="variables",
            )
        return found


def content_hash(template: str | list[dict[str, str]], model: Mapping[str, Any]) -> str:
    """Return the SHA-256 of a prompt's canonical form (sorted-key compact JSON, UTF-8).

    Template and model configuration are hashed; the commit message is not, so two versions with
    the same content are recognised as the same prompt.
    """
    canonical = json.dumps(
        {"model": dict(model), "template": template},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def prompt_uri(name: str, version: str) -> str:
    """Return the MLflow prompt registry URI of a version."""
    return f"prompts:/{name}/{version}"


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt version as read back: its model version row and its artifact row."""

    version: ModelVersion
    artifact: PromptVersion

    @property
    def name(self) -> str:
        """Return the prompt's name."""
        return self.version.name

    @property
    def number(self) -> str:
        """Return the version label."""
        return self.version.version


def render(
    template: str | list[dict[str, str]], variables: Mapping[str, str | int | float | bool]
) -> str | list[dict[str, str]]:
    """Fill a stored template's placeholders; every variable must be given, and no other.

    Raises:
        InvalidInput: A variable is missing (``variables.<name>``) or unknown (``variables``).
    """
    texts = [template] if isinstance(template, str) else [m["content"] for m in template]
    wanted = sorted({m[1] for text in texts for m in _VARIABLE.finditer(text)})
    missing = [v for v in wanted if v not in variables]
    if missing:
        raise InvalidInput(
            f"the template needs the variables {missing}; give a value for each",
            field=f"variables.{missing[0]}",
        )
    unknown = sorted(set(variables) - set(wanted))
    if unknown:
        raise InvalidInput(
            f"the template has no variables {unknown}; it uses {wanted}", field="variables"
        )

    def fill(text: str) -> str:
        return _VARIABLE.sub(lambda m: str(variables[m[1]]), text)

    if isinstance(template, str):
        return fill(template)
    return [{**m, "content": fill(m["content"])} for m in template]


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"prompt name {name!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )


def _versions(session: Session, project_id: uuid.UUID, name: str) -> list[ModelVersion]:
    return list(
        session.exec(
            select(ModelVersion).where(
                ModelVersion.project_id == project_id, ModelVersion.name == name
            )
        ).all()
    )


def next_prompt_version(
    *, session: Session, project_id: uuid.UUID, name: str, spec: PromptVersionCreate
) -> str:
    """Check a new version of ``name`` may be registered and return its version number.

    Raises:
        InvalidInput: The name is not a slug, ``name`` is a model's (not a prompt's), or the
            template or its variables are malformed.
        Conflict: The same template and model configuration are registered already.
    """
    _check_name(name)
    spec.checked_variables()
    versions = _versions(session, project_id, name)
    if any(v.kind != VersionKind.PROMPT for v in versions):
        raise InvalidInput(
            f"{name!r} names a model in this project, not a prompt; choose another prompt name",
            field="name",
        )
    digest = content_hash(spec.stored_template(), spec.stored_model())
    same = next((v for v in versions if v.artifact_sha256 == digest), None)
    if same is not None:
        raise Conflict(
            f"version {same.version} of prompt {name!r} has this template and model "
            "configuration already; change one of them to register a new version",
            field="template",
        )
    numbers = [int(v.version) for v in versions if v.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def register_prompt_version(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str,
    version: str,
    spec: PromptVersionCreate,
    registered_by: uuid.UUID | None,
) -> Prompt:
    """Record a prompt version (model version of kind ``prompt`` and its artifact row).

    ``version`` comes from :func:`next_prompt_version`; call that first, in the same session.

    Raises:
        Conflict: The version was registered concurrently.
    """
    template = spec.stored_template()
    model = spec.stored_model()
    digest = content_hash(template, model)
    model_version = ModelVersion(
        project_id=project_id,
        name=name,
        version=version,
        kind=VersionKind.PROMPT,
        artifact_uri=prompt_uri(name, version),
        artifact_sha256=digest,
        parameters={k: v for k, v in model.items() if isinstance(v, str | int | float | bool)},
        description=spec.commit_message,
        registered_by=registered_by,
    )
    try:
        with session.begin_nested():
            session.add(model_version)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"prompt {name!r} version {version} was registered by a concurrent request; retry",
            field="version",
        ) from None
    artifact = PromptVersion(
        project_id=project_id,
        model_version_id=model_version.id,
        template_type=spec.template_type(),
        template=template,
        variables=spec.checked_variables(),
        model_settings=model,
        commit_message=spec.commit_message,
        content_sha256=digest,
    )
    session.add(artifact)
    session.flush()
    return Prompt(version=model_version, artifact=artifact)


def _artifact(session: Session, model_version: ModelVersion) -> Prompt:
    artifact = session.exec(
        select(PromptVersion).where(PromptVersion.model_version_id == model_version.id)
    ).first()
    assert artifact is not None, "a prompt version always has its artifact row"
    return Prompt(version=model_version, artifact=artifact)


def get_prompt(*, session: Session, project_id: uuid.UUID, name: str, version: str) -> Prompt:
    """Return prompt ``name`` version ``version`` of the project or raise :class:`NotFound`."""
    model_version = session.exec(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == name,
            ModelVersion.version == version,
            ModelVersion.kind == VersionKind.PROMPT,
        )
    ).first()
    if model_version is None:
        raise NotFound(
            f"no version {version!r} of prompt {name!r} in this project; "
            f"list them with GET …/prompts/{name}/versions"
        )
    return _artifact(session, model_version)


def list_prompts(*, session: Session, project_id: uuid.UUID, name: str) -> list[Prompt]:
    """Return every version of prompt ``name``, oldest first (empty when there is none)."""
    rows = session.exec(
        select(ModelVersion, PromptVersion)
        .join(PromptVersion, col(PromptVersion.model_version_id) == col(ModelVersion.id))
        .where(ModelVersion.project_id == project_id, ModelVersion.name == name)
        .order_by(sa.asc(col(ModelVersion.created_at)))
    ).all()
    return [Prompt(version=v, artifact=a) for v, a in rows]


def page_prompts(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Prompt]:
    """Return a page of prompt ``name``'s versions, oldest first (empty when there is none).

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    found = keyset_page(
        session=session,
        query=select(ModelVersion, PromptVersion)
        .join(PromptVersion, col(PromptVersion.model_version_id) == col(ModelVersion.id))
        .where(ModelVersion.project_id == project_id, ModelVersion.name == name),
        keys=[SortKey(col(ModelVersion.created_at)), SortKey(col(ModelVersion.id))],
        key_of=lambda row: (row[0].created_at, row[0].id),
        limit=limit,
        cursor=cursor,
    )
    return found.map(lambda row: Prompt(version=row[0], artifact=row[1]))


def list_prompt_names(*, session: Session, project_id: uuid.UUID) -> list[str]:
    """Return the names of the project's prompts, sorted."""
    names = session.exec(
        select(ModelVersion.name)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind == VersionKind.PROMPT)
        .distinct()
    ).all()
    return sorted(names)


def resolve_alias(*, session: Session, project_id: uuid.UUID, name: str, alias: str) -> Prompt:
    """Return the version an alias names: ``latest``, or the one live in environment ``alias``.

    Raises:
        NotFound: No such prompt, or no version of it is live in that environment.
    """
    if alias == LATEST:
        versions = list_prompts(session=session, project_id=project_id, name=name)
        if not versions:
            raise NotFound(f"no prompt {name!r} in this project; register a version first")
        return versions[-1]
    live = session.exec(
        select(ModelVersion)
        .join(Deployment, col(Deployment.model_version_id) == col(ModelVersion.id))
        .where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == name,
            ModelVersion.kind == VersionKind.PROMPT,
            Deployment.project_id == project_id,
            Deployment.environment == alias,
            col(Deployment.live_until).is_(None),
        )
        .order_by(sa.desc(col(Deployment.live_from)))
    ).first()
    if live is None:
        raise NotFound(
            f"no version of prompt {name!r} is live in {alias!r}: an alias is an environment, "
            "moved only by promoting a version to an LLM deployment there (or 'latest')"
        )
    return _artifact(session, live)


def prompt_at(
    *, session: Session, project_id: uuid.UUID, deployment: str, environment: str, at: datetime
) -> Prompt | None:
    """Return the prompt version a deployment slot served at ``at`` (Warden's history), if any."""
    if at.tzinfo is None:
        raise InvalidInput("the time has no timezone; give an aware time", field="at")
    row = session.exec(
        select(ModelVersion)
        .join(Deployment, col(Deployment.model_version_id) == col(ModelVersion.id))
        .where(
            Deployment.project_id == project_id,
            Deployment.name == deployment,
            Deployment.environment == environment,
            col(Deployment.live_from) <= at,
            sa.or_(col(Deployment.live_until).is_(None), col(Deployment.live_until) > at),
            ModelVersion.kind == VersionKind.PROMPT,
        )
    ).first()
    return _artifact(session, row) if row is not None else None
