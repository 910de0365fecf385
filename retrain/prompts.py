"""Registering prompt versions in lineage and in MLflow's prompt registry, and checking them.

Warden and MLflow number a prompt's versions alike: a version is recorded in lineage first (a
concurrent registration fails on the unique key before MLflow is touched), then registered in
MLflow, whose number must be the one Warden chose; a registry that holds versions Warden did not
register is refused up front, so the two never drift apart silently. :func:`verify_prompt` is
what the going-live path checks before a prompt version serves: the stored template and model
configuration still hash to the registered hash, and MLflow still holds the same content.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from lineage.errors import Conflict
from lineage.prompts import (
    Prompt,
    PromptVersionCreate,
    content_hash,
    next_prompt_version,
    register_prompt_version,
)
from retrain.mlflow_registry import Registry

__all__ = ["CONTENT_TAG", "mlflow_model_config", "register_prompt", "verify_prompt"]

CONTENT_TAG = "warden.content_sha256"
"""The MLflow prompt-version tag carrying Warden's content hash."""


def mlflow_model_config(model: dict[str, object]) -> dict[str, object]:
    """Return MLflow's ``model_config`` for Warden's model settings (response format apart)."""
    config: dict[str, object] = {"provider": model["provider"], "model_name": model["name"]}
    for key in ("temperature", "max_tokens"):
        if key in model:
            config[key] = model[key]
    return config


def register_prompt(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str,
    spec: PromptVersionCreate,
    registered_by: uuid.UUID | None,
    registry: Registry,
) -> Prompt:
    """Register a new version of prompt ``name`` in lineage and MLflow; the caller audits it.

    Raises:
        InvalidInput: Bad name, template or variables (see :func:`next_prompt_version`).
        Conflict: Same content as an earlier version, a concurrent registration, or MLflow
            holding versions of the prompt that Warden did not register.
        Unavailable: MLflow could not register it (nothing is kept).
    """
    version = next_prompt_version(session=session, project_id=project_id, name=name, spec=spec)
    previous = None if version == "1" else str(int(version) - 1)
    in_mlflow = registry.latest_prompt_version(name)
    if in_mlflow != previous:
        raise Conflict(
            f"MLflow's prompt registry holds version {in_mlflow} of {name!r} but Warden's latest "
            f"is {previous}: versions were registered around Warden. Register prompts through "
            "Warden only, or use another prompt name",
            field="name",
        )
    prompt = register_prompt_version(
        session=session,
        project_id=project_id,
        name=name,
        version=version,
        spec=spec,
        registered_by=registered_by,
    )
    model = prompt.artifact.model_settings
    registered = registry.register_prompt(
        name,
        template=prompt.artifact.template,
        commit_message=spec.commit_message,
        model_config=mlflow_model_config(model),
        response_format=model.get("response_format"),
        tags={CONTENT_TAG: prompt.artifact.content_sha256},
    )
    if registered != version:
        raise Conflict(
            f"MLflow numbered the new version of {name!r} {registered}, Warden {version}: a "
            "concurrent registration went around Warden; retry",
            field="name",
        )
    return prompt


def verify_prompt(*, session: Session, registry: Registry | None, prompt: Prompt) -> None:
    """Refuse a prompt version whose content changed since it was registered.

    Without a ``registry`` only Warden's stored copy is checked.

    Raises:
        Conflict: The stored content no longer hashes to the registered hash, or MLflow's
            prompt registry holds a different template or model for the version.
    """
    artifact = prompt.artifact
    digest = content_hash(artifact.template, artifact.model_settings)
    label = f"prompt {prompt.name!r} version {prompt.number}"
    if digest != prompt.version.artifact_sha256 or digest != artifact.content_sha256:
        raise Conflict(
            f"the stored content of {label} hashes to {digest}, not to the registered "
            f"{prompt.version.artifact_sha256}; refusing to serve it. Find out who changed it "
            "and register a new version"
        )
    if registry is None:
        return
    held = registry.prompt_content(prompt.name, prompt.number)
    expected = mlflow_model_config(artifact.model_settings)
    if held.template != artifact.template or any(
        held.model_config.get(k) != v for k, v in expected.items()
    ):
        raise Conflict(
            f"MLflow's prompt registry holds different content for {label} than Warden "
            "registered; refusing to serve it. Register a new version through Warden"
        )
