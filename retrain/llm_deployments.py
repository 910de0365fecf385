"""LLM deployments: a deployment slot bound to a prompt and an OpenAI-compatible endpoint.

An LLM deployment *is* a deployment: its slot ``(name, environment)`` is a lineage deployment
slot, and which prompt version it serves is recorded there, moved only by
:func:`retrain.promotion.promote_prompt` under the one going-live rule. This table adds what a
model deployment does not have: the prompt it serves versions of and the endpoint binding (base
URL, model name, credentials).

Credentials are never stored in clear and never read back: either the *name* of an environment
variable the worker holds (``api_key_env``), or a key (``api_key``) sealed at once with the
installation's :class:`~governance.SecretBox` — given in clear, or as a ``sealed:`` reference an
administrator made with ``POST /api/v1/sealed-secrets``, so the author never sees the key. Only
:func:`endpoint_of`, called where the endpoint is actually used, opens them; its
:class:`Endpoint` hides the key from ``repr``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field as Column
from sqlmodel import Session, col, select

from governance import SecretBox
from lineage.errors import Conflict, InvalidInput, NotFound, Unavailable
from lineage.model_versions import MODEL_NAME_PATTERN
from lineage.models import Deployment, ModelVersion, VersionKind
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "SEALED_PREFIX",
    "Endpoint",
    "LlmDeployment",
    "LlmDeploymentCreate",
    "LlmDeploymentUpdate",
    "create_llm_deployment",
    "credentials_label",
    "delete_llm_deployment",
    "describe",
    "endpoint_of",
    "get_llm_deployment",
    "list_llm_deployments",
    "live_row",
    "update_llm_deployment",
]

_SLUG = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class LlmDeployment(Record, table=True):
    """The endpoint binding of an LLM deployment slot; what it serves is in lineage."""

    __tablename__ = "retrain_llm_deployment"
    __table_args__ = (sa.UniqueConstraint("project_id", "name", "environment"),)

    project_id: uuid.UUID = Column(foreign_key="lineage_project.id", index=True)
    name: str = Column(sa_column=sa.Column(sa.String(64), nullable=False))
    environment: str = Column(sa_column=sa.Column(sa.String(64), nullable=False))
    prompt_name: str = Column(sa_column=sa.Column(sa.String(256), nullable=False))
    base_url: str = Column(sa_column=sa.Column(sa.String(2048), nullable=False))
    model: str = Column(sa_column=sa.Column(sa.String(256), nullable=False))
    api_key_env: str | None = Column(default=None, sa_column=sa.Column(sa.String(128)))
    api_key_sealed: str | None = Column(default=None, sa_column=sa.Column(sa.Text()))
    description: str = Column(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    created_by: uuid.UUID | None = Column(default=None)
    updated_at: datetime = Column(
        default_factory=utcnow, sa_column=sa.Column(AwareDateTime(), nullable=False)
    )


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give the endpoint's http(s) base URL, e.g. https://api.openai.com/v1")
    if parts.username or parts.password:
        raise ValueError(
            "the URL carries credentials, which would be stored in clear; remove them and give "
            "api_key or api_key_env"
        )
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment; remove them")
    return url.rstrip("/")


class _Credentials(BaseModel):
    """Where the endpoint's API key comes from: an environment variable, or a key to seal."""

    api_key_env: Annotated[str, Field(pattern=_ENV_NAME)] | None = None
    api_key: Annotated[SecretStr, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Credentials:
        """Refuse both sources at once: which one is used would be a guess."""
        if self.api_key_env is not None and self.api_key is not None:
            raise ValueError(
                "give the key either by environment variable name (api_key_env) or as a value "
                "to seal (api_key), not both"
            )
        return self


class LlmDeploymentCreate(_Credentials):
    """A new LLM deployment slot: its prompt and its OpenAI-compatible endpoint.

    Attributes:
        name: The deployment's name (its traces name it too).
        environment: Where it runs; the prompt alias that follows it is this name.
        prompt: The prompt whose versions it serves (registered already).
        base_url: The endpoint's OpenAI-compatible base URL (``…/v1``).
        model: The model name to ask the endpoint for.
        api_key_env: The name of the environment variable holding the key (not the key).
        api_key: The key itself, sealed on receipt and never returned.
        description: Free text for people.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=_SLUG)]
    environment: Annotated[str, Field(pattern=_SLUG)] = "production"
    prompt: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    base_url: Annotated[str, Field(min_length=1, max_length=2048)]
    model: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4000)] = ""

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        """Accept an http(s) URL without credentials, query or fragment."""
        return _check_base_url(url)


class LlmDeploymentUpdate(_Credentials):
    """A change of an LLM deployment's endpoint; unset fields stay as they are.

    Giving ``api_key_env`` or ``api_key`` replaces the credentials; ``clear_credentials`` removes
    them (an endpoint that needs no key).
    """

    model_config = ConfigDict(extra="forbid")

    base_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    clear_credentials: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        """Accept an http(s) URL without credentials, query or fragment."""
        return None if url is None else _check_base_url(url)


def credentials_label(binding: LlmDeployment) -> str:
    """Say where the key comes from without saying the key: ``env:NAME``, ``sealed`` or ``none``."""
    if binding.api_key_env:
        return f"env:{binding.api_key_env}"
    return "sealed" if binding.api_key_sealed else "none"


def describe(binding: LlmDeployment) -> dict[str, Any]:
    """Return what an audit entry records of a binding (never a key)."""
    return {
        "name": binding.name,
        "environment": binding.environment,
        "prompt": binding.prompt_name,
        "base_url": binding.base_url,
        "model": binding.model,
        "credentials": credentials_label(binding),
    }


SEALED_PREFIX = "sealed:"
"""How a key sealed by ``POST /api/v1/sealed-secrets`` starts (its author never sees it)."""


def _key(spec: _Credentials, box: SecretBox) -> str:
    """Return the key given, opening a ``sealed:`` reference with this installation's key."""
    assert spec.api_key is not None
    value = spec.api_key.get_secret_value()
    if not value.startswith(SEALED_PREFIX):
        return value
    try:
        opened = box.open(value.removeprefix(SEALED_PREFIX)).get("secret")
    except Unavailable:
        opened = None
    if not opened:
        raise InvalidInput(
            "api_key starts with 'sealed:' but this installation's key does not open it; seal "
            "it with POST /api/v1/sealed-secrets here, or give the key itself",
            field="api_key",
        )
    return opened


def _set_credentials(binding: LlmDeployment, spec: _Credentials, box: SecretBox) -> None:
    if spec.api_key is not None:
        binding.api_key_sealed = box.seal({"api_key": _key(spec, box)})
        binding.api_key_env = None
    elif spec.api_key_env is not None:
        binding.api_key_env = spec.api_key_env
        binding.api_key_sealed = None


def create_llm_deployment(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: LlmDeploymentCreate,
    box: SecretBox,
    created_by: uuid.UUID | None,
) -> LlmDeployment:
    """Create an LLM deployment slot bound to a prompt; nothing is live until a promotion.

    Raises:
        InvalidInput: The prompt has no registered version in this project.
        Conflict: The slot exists already.
    """
    prompt = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == spec.prompt,
            ModelVersion.kind == VersionKind.PROMPT,
        )
    ).first()
    if prompt is None:
        raise InvalidInput(
            f"no prompt {spec.prompt!r} in this project; register a version under "
            f"…/prompts/{spec.prompt}/versions first",
            field="prompt",
        )
    binding = LlmDeployment(
        project_id=project_id,
        name=spec.name,
        environment=spec.environment,
        prompt_name=spec.prompt,
        base_url=spec.base_url,
        model=spec.model,
        description=spec.description,
        created_by=created_by,
    )
    _set_credentials(binding, spec, box)
    try:
        with session.begin_nested():
            session.add(binding)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"an LLM deployment {spec.name!r} in {spec.environment!r} exists already; change "
            "it with PATCH …/llm-deployments/{name}",
            field="name",
        ) from None
    return binding


def get_llm_deployment(
    *, session: Session, project_id: uuid.UUID, name: str, environment: str
) -> LlmDeployment:
    """Return one LLM deployment of the project or raise :class:`NotFound`."""
    binding = session.exec(
        select(LlmDeployment).where(
            LlmDeployment.project_id == project_id,
            LlmDeployment.name == name,
            LlmDeployment.environment == environment,
        )
    ).first()
    if binding is None:
        raise NotFound(
            f"no LLM deployment {name!r} in {environment!r} in this project; list them with "
            "GET …/llm-deployments"
        )
    return binding


def list_llm_deployments(*, session: Session, project_id: uuid.UUID) -> list[LlmDeployment]:
    """Return the project's LLM deployments by name and environment."""
    return list(
        session.exec(
            select(LlmDeployment)
            .where(LlmDeployment.project_id == project_id)
            .order_by(sa.asc(col(LlmDeployment.name)), sa.asc(col(LlmDeployment.environment)))
        ).all()
    )


def update_llm_deployment(
    *, session: Session, binding: LlmDeployment, spec: LlmDeploymentUpdate, box: SecretBox
) -> LlmDeployment:
    """Change an LLM deployment's endpoint, model, credentials or description.

    Raises:
        InvalidInput: Nothing to change, or credentials both given and cleared.
    """
    if spec.clear_credentials and (spec.api_key is not None or spec.api_key_env is not None):
        raise InvalidInput(
            "clear_credentials removes the key; do not give a new one with it",
            field="clear_credentials",
        )
    if not spec.model_fields_set - {"clear_credentials"} and not spec.clear_credentials:
        raise InvalidInput(
            "nothing to change: give base_url, model, description, api_key, api_key_env or "
            "clear_credentials",
            field="body",
        )
    if spec.base_url is not None:
        binding.base_url = spec.base_url
    if spec.model is not None:
        binding.model = spec.model
    if spec.description is not None:
        binding.description = spec.description
    if spec.clear_credentials:
        binding.api_key_env = None
        binding.api_key_sealed = None
    _set_credentials(binding, spec, box)
    binding.updated_at = utcnow()
    session.add(binding)
    session.flush()
    return binding


def live_row(*, session: Session, binding: LlmDeployment) -> Deployment | None:
    """Return the lineage deployment live in the binding's slot, if any."""
    return session.exec(
        select(Deployment).where(
            Deployment.project_id == binding.project_id,
            Deployment.name == binding.name,
            Deployment.environment == binding.environment,
            col(Deployment.live_until).is_(None),
        )
    ).first()


def delete_llm_deployment(*, session: Session, binding: LlmDeployment) -> None:
    """Remove an LLM deployment whose slot serves nothing (its history stays in lineage).

    Raises:
        Conflict: A prompt version is live in the slot.
    """
    live = live_row(session=session, binding=binding)
    if live is not None:
        raise Conflict(
            f"a prompt version is live in {binding.name!r} ({binding.environment}); end that "
            f"deployment first (POST …/deployments/{live.id}/end), then delete"
        )
    session.delete(binding)
    session.flush()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to call an LLM deployment: base URL, model and the opened key (hidden from repr)."""

    base_url: str
    model: str
    api_key: str | None = field(repr=False)


def endpoint_of(
    binding: LlmDeployment, *, box: SecretBox, environ: Mapping[str, str] | None = None
) -> Endpoint:
    """Open an LLM deployment's credentials where the endpoint is about to be called.

    Raises:
        Unavailable: The named environment variable is not set in this process.
    """
    key: str | None = None
    if binding.api_key_env:
        key = (os.environ if environ is None else environ).get(binding.api_key_env)
        if not key:
            raise Unavailable(
                f"the environment variable {binding.api_key_env} that LLM deployment "
                f"{binding.name!r} takes its key from is not set in this process; set it "
                "where the worker runs"
            )
    elif binding.api_key_sealed:
        key = box.open(binding.api_key_sealed)["api_key"]
    return Endpoint(base_url=binding.base_url, model=binding.model, api_key=key)
