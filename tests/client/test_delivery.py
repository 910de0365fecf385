"""Delivery to a live Warden: through a SIGKILLed restart, refusals, the spool, memory bounds."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from warden_client import AsyncWardenClient, WardenClient

from tests.client.conftest import LiveWarden, closed_port_url

pytestmark = pytest.mark.slow

TOTAL = 100_000


def _features(index: int) -> dict[str, object]:
    return {
        "amount": float(index % 997) / 7,
        "country": ("fr", "de", "us")[index % 3],
        "age": index % 90,
    }


def _wait(condition: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_a_stream_survives_a_killed_and_restarted_server_with_nothing_lost_or_duplicated(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment()
    client = WardenClient(
        warden.url,
        "shop",
        deployment=deployment.id,
        api_key=warden.key,
        spool_dir=tmp_path / "spool",
        batch_size=2_000,
        flush_interval=0.2,
        max_queue=20_000,
        timeout=5,
    )
    client._pipeline.backoff.cap = 1.0  # reconnect fast once the server is back
    ids = [f"req-{i:06d}" for i in range(TOTAL)]
    try:
        for i in range(30_000):
            client.log(_features(i), prediction=i % 2, score=(i % 100) / 100, request_id=ids[i])
        _wait(lambda: client.stats.sent >= 10_000, timeout=120, what="the first batches")
        warden.kill()  # mid-stream: batches are in flight and queued
        for i in range(30_000, 70_000):
            client.log(_features(i), prediction=i % 2, score=(i % 100) / 100, request_id=ids[i])
        _wait(lambda: client.queued == 0, timeout=60, what="the buffer to reach the spool")
        assert client.stats.spooled > 0
        assert client.pending_files()
        restarter = threading.Thread(target=warden.start)
        restarter.start()
        for i in range(70_000, TOTAL):  # logged while Warden starts again
            client.log(_features(i), prediction=i % 2, score=(i % 100) / 100, request_id=ids[i])
            if i % 1_000 == 0:
                time.sleep(0.01)
        restarter.join()
        assert client.close(timeout=300), client.stats
    finally:
        client.close(timeout=0)
    stats = client.stats
    assert stats.logged == TOTAL
    assert stats.dead == 0
    assert stats.retries > 0
    assert not client.pending_files()
    stored = warden.stored(deployment)
    assert len(stored) == TOTAL
    assert stored["request_id"].nunique() == TOTAL
    assert set(stored["request_id"]) == set(ids)
    # Each record is answered once; a batch stored just before the kill (or a read timeout) is
    # answered on its re-send, counted in ``duplicates``, and stored once all the same.
    assert stats.sent == TOTAL


def test_a_refused_record_goes_to_dead_letter_and_its_batch_mates_are_stored(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment()
    with WardenClient(
        warden.url, "shop", deployment=deployment.id, api_key=warden.key,
        spool_dir=tmp_path / "spool", batch_size=8, flush_interval=0.05,
    ) as client:  # fmt: skip
        for i in range(8):
            features = _features(i) if i != 5 else {**_features(i), "colour": "red"}
            client.log(features, prediction=1, request_id=f"r{i}")
        assert client.flush(timeout=60)
        dead = client.dead_letters()
    assert len(dead) == 1
    letter = json.loads(dead[0].read_text())
    assert [r["request_id"] for r in letter["records"]] == ["r5"]
    assert "HTTP 422" in letter["reason"]
    assert "colour" in letter["reason"]
    assert client.stats.dead == 1
    assert sorted(warden.stored(deployment)["request_id"]) == [f"r{i}" for i in range(8) if i != 5]


def test_a_wrong_key_is_a_permanent_refusal_kept_whole_in_dead_letter(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment()
    with WardenClient(
        warden.url, "shop", deployment=deployment.id, api_key="not-a-key",
        spool_dir=tmp_path / "spool", batch_size=4, flush_interval=0.05,
    ) as client:  # fmt: skip
        for i in range(4):
            client.log(_features(i), request_id=f"r{i}")
        assert client.flush(timeout=60)
    (dead,) = client.dead_letters()
    letter = json.loads(dead.read_text())
    assert len(letter["records"]) == 4
    assert letter["reason"].startswith("HTTP 401")
    assert warden.stored(deployment).empty


def test_batches_spooled_while_warden_was_down_are_sent_by_the_next_client(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment()
    spool = tmp_path / "spool"
    down = WardenClient(
        closed_port_url(), "shop", deployment=deployment.id, api_key=warden.key,
        spool_dir=spool, batch_size=100, flush_interval=0.05, timeout=1,
    )  # fmt: skip
    for i in range(250):
        down.log(_features(i), request_id=f"r{i}")
    assert not down.close(timeout=0.5)  # Warden unreachable: all of it waits on disk
    assert down.stats.spooled == 250
    assert sum(len(json.loads(p.read_text())["records"]) for p in down.pending_files()) == 250

    with WardenClient(
        warden.url, "shop", deployment=deployment.id, api_key=warden.key, spool_dir=spool
    ) as up:
        assert up.flush(timeout=60)
    assert not up.pending_files()
    assert sorted(warden.stored(deployment)["request_id"]) == sorted(f"r{i}" for i in range(250))


def test_labels_follow_their_inferences_by_request_id(warden: LiveWarden, tmp_path: Path) -> None:
    deployment = warden.deployment()
    with WardenClient(
        warden.url, "shop", deployment=deployment.id, api_key=warden.key,
        spool_dir=tmp_path / "spool", flush_interval=0.05,
    ) as client:  # fmt: skip
        ids = [client.log(_features(i), prediction=i % 2) for i in range(20)]
        assert client.flush(timeout=60)
        for i, request_id in enumerate(ids[:10]):
            client.log_label(request_id, i % 2)
        assert client.flush(timeout=60)
    stored = warden.stored(deployment).set_index("request_id")
    assert stored.loc[ids[:10], "label"].astype(int).tolist() == [i % 2 for i in range(10)]
    assert stored.loc[ids[10:], "label"].isna().all()


def test_the_async_client_delivers_from_an_event_loop(warden: LiveWarden, tmp_path: Path) -> None:
    deployment = warden.deployment()

    async def serve() -> AsyncWardenClient:
        async with AsyncWardenClient(
            warden.url, "shop", deployment=str(deployment.id), api_key=warden.key,
            spool_dir=tmp_path / "spool", batch_size=300, flush_interval=0.05,
        ) as client:  # fmt: skip
            for i in range(1_000):
                client.log(_features(i), prediction=i % 2, score=0.5, request_id=f"a{i}")
                if i % 100 == 0:
                    await asyncio.sleep(0)
        return client

    client = asyncio.run(serve())
    assert client.stats.sent == 1_000
    assert warden.stored(deployment)["request_id"].nunique() == 1_000


def test_memory_stays_within_max_queue_and_the_overflow_is_counted_on_disk(tmp_path: Path) -> None:
    client = WardenClient(
        closed_port_url(), "shop", deployment="6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10",
        api_key="k", spool_dir=tmp_path / "spool", batch_size=50, max_queue=200,
        flush_interval=60, timeout=1,
    )  # fmt: skip
    peak = 0
    for i in range(2_000):
        client.log(_features(i))
        peak = max(peak, client.queued)
    assert peak <= 200
    assert not client.flush(timeout=1.0)  # the sender settles its batch in flight: on disk
    on_disk = sum(len(json.loads(p.read_text())["records"]) for p in client.pending_files())
    assert client.stats.spooled == on_disk
    assert on_disk + client.queued == 2_000  # nothing dropped
    assert not client.close(timeout=0.2)
    assert client.queued == 0
    assert sum(len(json.loads(p.read_text())["records"]) for p in client.pending_files()) == 2_000
    assert client.stats.spooled == 2_000


def test_settings_and_inputs_are_checked_where_they_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARDEN_API_KEY", raising=False)
    with pytest.raises(ValueError, match="WARDEN_API_KEY"):
        WardenClient("http://x", "shop", spool_dir=tmp_path)
    monkeypatch.setenv("WARDEN_API_KEY", "from-env")
    with pytest.raises(ValueError, match="neither a UUID nor a deployment name"):
        WardenClient("http://x", "shop", deployment="income api/../x", spool_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        WardenClient("http://x", "shop", batch_size=10_001, spool_dir=tmp_path)
    client = WardenClient(closed_port_url(), "shop", spool_dir=tmp_path, timeout=0.2)
    with pytest.raises(ValueError, match="no deployment"):
        client.log({"a": 1})
    record_id = client.log(
        {"a": float("nan"), "b": float("inf")}, deployment="6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10"
    )
    assert not client.close(timeout=0.3)
    (spooled,) = client.pending_files()
    record = json.loads(spooled.read_text())["records"][0]
    assert record["request_id"] == record_id
    assert record["features"] == {"a": None, "b": None}  # JSON has no NaN; Warden refuses it
    with pytest.raises(RuntimeError, match="closed"):
        client.log({"a": 1})


def test_429_and_5xx_are_retried_after_the_servers_retry_after(tmp_path: Path) -> None:
    """A stand-in for Warden (an httpx transport) answers 429, then 503, then stores the batch."""
    answers = [
        httpx.Response(429, headers={"Retry-After": "0.6"}, text="slow down"),
        httpx.Response(503, text="restarting"),
        httpx.Response(201, json={"batch_id": None, "accepted": 3, "duplicates": 0}),
    ]
    seen: list[tuple[float, int]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), len(json.loads(request.content)["records"])))
        return answers[len(seen) - 1]

    client = WardenClient(
        "http://warden.test", "shop", deployment="6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10",
        api_key="k", spool_dir=tmp_path, flush_interval=0.01, transport=httpx.MockTransport(answer),
    )  # fmt: skip
    client._pipeline.backoff.base = 0.05
    for i in range(3):
        client.log({"amount": float(i)}, request_id=f"r{i}")
    assert client.close(timeout=30)
    assert [count for _, count in seen] == [3, 3, 3]
    assert seen[1][0] - seen[0][0] >= 0.6  # Retry-After honoured
    assert client.stats.retries == 2
    assert client.stats.sent == 3
    assert not client.pending_files()


def test_the_async_client_spools_while_warden_is_down_and_loses_nothing(tmp_path: Path) -> None:
    async def serve() -> AsyncWardenClient:
        client = AsyncWardenClient(
            closed_port_url(), "shop", deployment="6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10",
            api_key="k", spool_dir=tmp_path, batch_size=100, max_queue=150, flush_interval=0.01,
            timeout=0.5,
        )  # fmt: skip
        for i in range(300):
            client.log(_features(i), request_id=f"a{i}")
            assert client.queued <= 150
        client.log_label("a0", 1)
        assert not await client.flush(timeout=0.5)
        assert not await client.aclose(timeout=0.2)
        return client

    client = asyncio.run(serve())
    spooled = [json.loads(p.read_text()) for p in client.pending_files()]
    assert sum(len(s["records"]) for s in spooled if s["kind"] == "inferences") == 300
    assert [s["records"] for s in spooled if s["kind"] == "labels"] == [
        [{"request_id": "a0", "label": 1}]
    ]
    assert client.stats.spooled == 301


def test_numpy_pandas_and_datetime_values_become_json_cells(tmp_path: Path) -> None:
    client = WardenClient(
        closed_port_url(), "shop", deployment="6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10",
        api_key="k", spool_dir=tmp_path, timeout=0.2,
    )  # fmt: skip
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    client.log(
        {
            "f32": np.float32(1.5), "i64": np.int64(7), "nan": np.float64("nan"),
            "flag": np.bool_(True), "stamp": pd.Timestamp(when), "day": dt.date(2026, 1, 2),
            "other": complex(1, 2),
        },
        prediction=np.int64(1), score=np.float32(0.25), probabilities={"a": np.float64(0.5)},
        time=when,
    )  # fmt: skip
    assert not client.close(timeout=0.3)
    (spooled,) = client.pending_files()
    (record,) = json.loads(spooled.read_text())["records"]
    assert record["features"] == {
        "f32": 1.5, "i64": 7, "nan": None, "flag": True, "stamp": "2026-01-02T03:04:00+00:00",
        "day": "2026-01-02", "other": "(1+2j)",
    }  # fmt: skip
    assert (record["prediction"], record["score"], record["probabilities"]) == (1, 0.25, {"a": 0.5})
    assert record["time"] == "2026-01-02T03:04:00+00:00"


def test_an_unreadable_spool_file_is_set_aside_not_retried_forever(tmp_path: Path) -> None:
    (tmp_path / "pending").mkdir()
    (tmp_path / "pending" / "00000000000000000001-junk.json").write_text("{not json")
    client = WardenClient(
        closed_port_url(), "shop", api_key="k", spool_dir=tmp_path, flush_interval=0.01,
        timeout=0.2,
    )  # fmt: skip
    assert client.flush(timeout=10)
    client.close(timeout=0)
    assert not client.pending_files()
    reason = (tmp_path / "dead" / "00000000000000000001-junk.reason").read_text()
    assert reason.startswith("unreadable spool file")
