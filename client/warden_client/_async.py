"""The asyncio client: ``log`` appends to the same bounded buffer; an asyncio task sends.

Disk work (spool writes, reads) runs in a worker thread so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx

from warden_client._pipeline import (
    Config,
    Pipeline,
    Stats,
    Verdict,
    default_spool_dir,
    judge,
    judge_error,
    log,
    resolve_key,
)
from warden_client._records import Batch, deployment_id, inference, label

__all__ = ["AsyncWardenClient"]


class AsyncWardenClient:
    """:class:`~warden_client.WardenClient` for asyncio apps: same arguments, same guarantees.

    ``log`` and ``log_label`` are plain methods (they only append); ``await flush()`` and
    ``await aclose()`` (or ``async with``) send what waits. The sender task starts on the first
    ``log`` inside a running loop or on ``async with``. If the loop ends without ``aclose``, an
    ``atexit`` hook writes what is still in memory to the spool for the next client.
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        deployment: uuid.UUID | str | None = None,
        api_key: str | None = None,
        spool_dir: str | Path | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.deployment = None if deployment is None else deployment_id(deployment)
        self._pipeline = Pipeline(
            Config(
                url=url,
                project=project,
                api_key=resolve_key(api_key),
                spool_dir=Path(spool_dir) if spool_dir else default_spool_dir(url, project),
                batch_size=batch_size,
                flush_interval=flush_interval,
                max_queue=max_queue,
                timeout=timeout,
            )
        )
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._flushing = False
        self._inflight: Batch | None = None
        self._closed = False
        atexit.register(self._at_exit)

    def _start(self) -> None:
        if self._task is not None:
            return
        asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._http = httpx.AsyncClient(
            timeout=self._timeout,
            transport=self._transport,
            headers={
                "Authorization": f"Bearer {self._pipeline.config.api_key}",
                "User-Agent": "warden-client/0.1",
            },
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="warden-client")

    def _deployment(self, deployment: uuid.UUID | str | None) -> str:
        if deployment is not None:
            return deployment_id(deployment)
        if self.deployment is None:
            raise ValueError("no deployment: pass deployment= here or to the client")
        return self.deployment

    def _queue(self, kind: str, deployment: str, record: dict[str, object]) -> None:
        if self._closed:
            raise RuntimeError("this AsyncWardenClient is closed")
        if kind == "inferences":
            self._pipeline.enqueue("inferences", deployment, record)
        else:
            self._pipeline.enqueue("labels", deployment, record)
        with contextlib.suppress(RuntimeError):  # no running loop: the buffer waits for one
            self._start()
        if (
            self._wake is not None
            and len(self._pipeline.buffer) >= self._pipeline.config.batch_size
        ):
            self._wake.set()

    def log(
        self,
        features: Mapping[str, object],
        *,
        prediction: object = None,
        score: object = None,
        probabilities: Mapping[object, object] | None = None,
        request_id: str | None = None,
        time: datetime | None = None,
        deployment: uuid.UUID | str | None = None,
        context: Mapping[str, object] | None = None,
        attributions: Mapping[str, object] | None = None,
    ) -> str:
        """Queue one inference; return its request id (fresh unless given) for labels later.

        ``context``: values that are not model inputs (sensitive attributes, slices) as the
        version's ``context_schema`` declares them; ``attributions``: per-feature attributions
        the serving app computed (e.g. SHAP), read by explanations instead of the model.
        """
        record = inference(
            features=features,
            prediction=prediction,
            score=score,
            probabilities=probabilities,
            request_id=request_id,
            time=time,
            context=context,
            attributions=attributions,
        )
        self._queue("inferences", self._deployment(deployment), record)
        return str(record["request_id"])

    def log_label(
        self, request_id: str, label_value: object, *, deployment: uuid.UUID | str | None = None
    ) -> None:
        """Queue the ground truth of an inference logged before (the first label wins)."""
        self._queue(
            "labels", self._deployment(deployment), label(request_id=request_id, value=label_value)
        )

    @property
    def stats(self) -> Stats:
        """Return a snapshot of the counts (what was logged, sent, spooled, refused)."""
        with self._pipeline.lock:
            return Stats(**self._pipeline.stats.to_dict())

    @property
    def queued(self) -> int:
        """Records waiting in memory (never more than ``max_queue``)."""
        return len(self._pipeline.buffer)

    def pending_files(self) -> list[Path]:
        """Return the spooled batches waiting to be sent."""
        return self._pipeline.spool.pending()

    def dead_letters(self) -> list[Path]:
        """Return the batches Warden refused for good, with their reasons inside."""
        return self._pipeline.spool.dead()

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything waiting, in memory and in the spool; ``True`` once all is sent.

        Returns ``False`` when ``timeout`` seconds passed first (Warden still down): nothing is
        lost, what is left waits in memory or in the spool.
        """
        self._start()
        assert self._wake is not None
        assert self._idle is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flushing = True
        try:
            while True:
                self._idle.clear()
                self._wake.set()
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                try:
                    await asyncio.wait_for(self._idle.wait(), left)
                except TimeoutError:
                    return False
                if self.queued == 0 and not await asyncio.to_thread(self._pipeline.spool.pending):
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                pause = max(self._pipeline.backoff.waiting, 0.05)
                await asyncio.sleep(pause if left is None else min(pause, left))
        finally:
            self._flushing = False

    async def aclose(self, timeout: float | None = 10.0) -> bool:
        """Flush for up to ``timeout`` seconds, spool what is left, stop the task."""
        if self._closed:
            return True
        sent = await self.flush(timeout)
        self._closed = True
        atexit.unregister(self._at_exit)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rest = self._pipeline.buffer.take(self._pipeline.config.max_queue)
        if self._inflight is not None:
            rest.append(self._inflight)
        await asyncio.to_thread(self._pipeline.park, rest)
        if self._http is not None:
            await self._http.aclose()
        return sent

    def _at_exit(self) -> None:
        self._pipeline.park(self._pipeline.buffer.take(self._pipeline.config.max_queue))

    async def __aenter__(self) -> AsyncWardenClient:
        self._start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _post(self, batch: Batch) -> Verdict:
        assert self._http is not None
        try:
            response = await self._http.post(self._pipeline.config.route(batch), json=batch.body())
        except httpx.HTTPError as error:
            return judge_error(error)
        return judge(response)

    async def _run(self) -> None:
        assert self._wake is not None
        assert self._idle is not None
        pipeline = self._pipeline
        while True:
            wait = pipeline.config.flush_interval - pipeline.buffer.age()
            if pipeline.backoff.waiting:
                wait = min(wait, pipeline.backoff.waiting)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.0))
            self._wake.clear()
            try:
                await self._cycle(flushing=self._flushing)
            except Exception:
                log.exception("warden-client sender failed; retrying")
                await asyncio.sleep(min(pipeline.config.flush_interval, 1.0))
            self._idle.set()

    async def _cycle(self, *, flushing: bool) -> None:
        pipeline = self._pipeline
        while pipeline.due() or (flushing and len(pipeline.buffer)):
            for batch in pipeline.buffer.take(pipeline.config.batch_size):
                if pipeline.down or pipeline.backoff.waiting:
                    await asyncio.to_thread(pipeline.park, [batch])
                    continue
                self._inflight = batch
                verdict = await self._post(batch)
                self._inflight = None
                await asyncio.to_thread(pipeline.settle, batch, verdict)
        if pipeline.backoff.waiting:
            return
        for path in await asyncio.to_thread(pipeline.spool.pending):
            spooled = await asyncio.to_thread(pipeline.spool.read, path)
            if spooled is None:
                continue
            verdict = await self._post(spooled)
            if not await asyncio.to_thread(pipeline.settle, spooled, verdict, path):
                return
            if pipeline.due():
                return
