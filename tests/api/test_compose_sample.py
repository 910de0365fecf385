"""The sample deployment (docs/deploy/compose.yaml) names only commands and settings that exist.

CI cannot run Docker, so this is what keeps the sample honest: every ``warden`` command line it
runs resolves to a command and its options, every ``WARDEN_*`` variable is a setting, the AWS
variables are the ones the bucket store reads, and the bucket Warden is pointed at is the one
the sample creates.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import typer
import yaml

from api.cli import app
from api.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
AWS_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
}


def _sample() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _resolve(words: list[str]) -> None:
    """Check that ``warden *words`` names a command, and each option it passes exists."""
    command: Any = typer.main.get_command(app)
    rest = list(words)
    while hasattr(command, "commands"):  # a group: the next word names one of its commands
        name = rest.pop(0)
        assert name in command.commands, f"warden has no command {name!r} ({words})"
        command = command.commands[name]
    options = {opt for param in command.params for opt in param.opts}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{words}: no option {word!r}"


def test_every_warden_service_runs_a_real_command_with_real_settings() -> None:
    services = _sample()["services"]
    warden = {name: s for name, s in services.items() if s.get("image") == "warden:local"}
    assert set(warden) == {"migrate", "api", "scheduler", "worker"}
    for name, service in warden.items():
        _resolve(service["command"])
        variables = set(service["environment"])
        settings = {v for v in variables if v.startswith("WARDEN_")}
        unknown = {
            v for v in settings if v.removeprefix("WARDEN_").lower() not in Settings.model_fields
        }
        assert not unknown, f"{name}: no such setting {unknown}"
        assert variables - settings <= AWS_VARIABLES, name
    # The commands the comments tell a reader to run exist too.
    header = (DEPLOY / "compose.yaml").read_text()
    for line in re.findall(r"run --rm migrate (.+)", header):
        _resolve(line.split())


def test_the_bucket_warden_uses_is_the_one_the_sample_creates() -> None:
    services = _sample()["services"]
    url = services["api"]["environment"]["WARDEN_ARTIFACT_URL"]
    bucket = re.fullmatch(r"s3://([a-z0-9.-]+)/.+", url)
    assert bucket is not None
    assert f"mb --ignore-existing store/{bucket.group(1)}" in " ".join(
        services["bucket"]["command"]
    )
    assert services["api"]["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    image = (DEPLOY / "Dockerfile").read_text()
    assert '"/src[s3,pdf]"' in image
    project = tomllib.loads((DEPLOY.parents[1] / "pyproject.toml").read_text())["project"]
    assert {"s3", "pdf"} <= set(project["optional-dependencies"])
    assert 'ENTRYPOINT ["warden"]' in image
