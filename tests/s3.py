"""A real S3 API for tests: ``moto`` in server mode on 127.0.0.1, spoken to over HTTP.

Nothing is patched in process; boto3 talks to the server exactly as to an S3-compatible store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.settings import Settings

__all__ = ["ACCESS_KEY", "SECRET_KEY", "create_bucket", "moto_server", "use_local_s3"]

ACCESS_KEY = "warden-test"
SECRET_KEY = "warden-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``moto_server`` on a free loopback port; yield its endpoint URL, kill it after."""
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start within 60 s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the server (Warden itself never creates buckets)."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ).create_bucket(Bucket=bucket)


def use_local_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point the usual AWS variables at the local server, as an operator's environment would."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


def artifacts_in_bucket(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, settings: Settings, bucket: str
) -> Settings:
    """Create ``bucket`` on the local server and return ``settings`` keeping artifacts there
    (``WARDEN_ARTIFACT_URL=s3://<bucket>/prod``, the usual AWS variables pointed at it)."""
    create_bucket(endpoint, bucket)
    use_local_s3(monkeypatch, endpoint)
    return settings.model_copy(update={"artifact_url": f"s3://{bucket}/prod"})
