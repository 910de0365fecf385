"""Context values and attributions sent by ``warden-client`` are stored as Warden stores them.

A live ``warden serve``; the deployment is addressed by its name, as the server's routes allow.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from warden_client import AsyncWardenClient, WardenClient

from tests.client.conftest import LiveWarden

pytestmark = pytest.mark.slow

CONTEXT = {"sex": {"role": "sensitive"}, "region": {"role": "slice"}}


def test_context_and_attributions_are_stored_per_record_under_the_deployment_name(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment(context=CONTEXT)
    with WardenClient(
        warden.url,
        "shop",
        deployment=deployment.name,  # a name: the deployment live in production
        api_key=warden.key,
        spool_dir=tmp_path / "spool",
        flush_interval=0.05,
    ) as client:
        first = client.log(
            {"amount": 12.5, "country": "fr", "age": 31},
            prediction=1,
            score=0.8,
            context={"sex": "Female", "region": "west"},
            attributions={"amount": 0.25, "country": -0.5, "age": float("nan")},
        )
        second = client.log({"amount": 3.0, "country": "de", "age": 60}, prediction=0)
        client.log_label(first, 1)
        assert client.flush(timeout=30)
        assert client.stats.dead == 0
    stored = warden.stored(deployment).set_index("request_id")
    assert stored.loc[first, "context.sex"] == "Female"
    assert stored.loc[first, "context.region"] == "west"
    # NaN is not JSON: that attribution is left out, the others kept as sent.
    assert json.loads(str(stored.loc[first, "attributions"])) == {"amount": 0.25, "country": -0.5}
    assert pd.isna(stored.loc[second, "context.sex"])
    assert stored.loc[first, "label"] == 1


def test_the_async_client_sends_context_and_a_refused_context_is_dead_lettered(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment(context=CONTEXT)

    async def send() -> tuple[str, int]:
        async with AsyncWardenClient(
            warden.url,
            "shop",
            deployment=str(deployment.id),
            api_key=warden.key,
            spool_dir=tmp_path / "spool",
            flush_interval=0.05,
        ) as client:
            kept = client.log({"amount": 1.0, "country": "us", "age": 40}, context={"sex": "Male"})
            # Not declared in the version's context schema: Warden refuses the record (422).
            client.log({"amount": 2.0, "country": "us", "age": 41}, context={"religion": "x"})
            await client.flush(timeout=30)
            return kept, client.stats.dead

    kept, dead = asyncio.run(send())
    assert dead == 1
    stored = warden.stored(deployment).set_index("request_id")
    assert list(stored.index) == [kept]
    assert stored.loc[kept, "context.sex"] == "Male"
