"""Credentials of an LLM deployment are opened only where the endpoint is called, and hidden."""

from __future__ import annotations

import uuid

import pytest

from governance import SecretBox
from lineage.errors import Unavailable
from retrain.llm_deployments import LlmDeployment, credentials_label, endpoint_of

KEY = "sk-test-only-here"


def _binding(*, api_key_env: str | None = None, api_key_sealed: str | None = None) -> LlmDeployment:
    return LlmDeployment(
        project_id=uuid.uuid4(),
        name="bot",
        environment="production",
        prompt_name="support",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        api_key_env=api_key_env,
        api_key_sealed=api_key_sealed,
    )


def test_a_sealed_key_opens_only_with_the_box_and_never_shows_in_repr() -> None:
    box = SecretBox.generate()
    binding = _binding(api_key_sealed=box.seal({"api_key": KEY}))
    assert binding.api_key_sealed is not None
    assert KEY not in binding.api_key_sealed
    endpoint = endpoint_of(binding, box=box)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key) == (
        "http://127.0.0.1:9/v1",
        "m",
        KEY,
    )
    assert KEY not in repr(endpoint)
    assert credentials_label(binding) == "sealed"


def test_an_environment_variable_is_read_when_called_and_its_absence_named() -> None:
    binding = _binding(api_key_env="SUPPORT_BOT_KEY")
    assert credentials_label(binding) == "env:SUPPORT_BOT_KEY"
    box = SecretBox.generate()
    assert endpoint_of(binding, box=box, environ={"SUPPORT_BOT_KEY": KEY}).api_key == KEY
    with pytest.raises(Unavailable, match=r"SUPPORT_BOT_KEY .* is not set"):
        endpoint_of(binding, box=box, environ={})
    assert endpoint_of(_binding(), box=box).api_key is None
