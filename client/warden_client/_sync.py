"""The synchronous client: ``log`` appends to a buffer; a daemon thread batches and sends."""

from __future__ import annotations

import atexit
import threading
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

__all__ = ["WardenClient"]

_USER_AGENT = "warden-client/0.1"


class WardenClient:
    """Log inferences and labels to Warden from serving code, without waiting on Warden.

    ``log`` returns at once (it appends to a bounded buffer; when that is full it writes the
    oldest batch to the spool). A daemon thread sends batches of ``batch_size`` records, or
    whatever is waiting after ``flush_interval`` seconds. Use it as a context manager or call
    :meth:`close`; an ``atexit`` hook flushes it otherwise.

    Args:
        url: Warden's base URL, e.g. ``http://warden:8000``.
        project: The project's name.
        deployment: The default deployment: its UUID, or its name (the one live in production).
        api_key: A key with ``inference:write``; ``WARDEN_API_KEY`` when omitted.
        spool_dir: Where batches wait while Warden is down (``WARDEN_SPOOL_DIR``, else a
            directory per server and project under ``~/.cache/warden-client``). A client started
            on a directory an earlier process left sends its batches first.
        batch_size: Records per request (at most 10,000, Warden's limit).
        flush_interval: Seconds a record may wait for its batch to fill.
        max_queue: Records held in memory at most.
        timeout: Seconds one request may take.
        exit_timeout: Seconds ``atexit`` spends sending before spooling the rest.
        transport: An httpx transport (tests, proxies); the default otherwise.
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
        exit_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.deployment = None if deployment is None else deployment_id(deployment)
        self.exit_timeout = exit_timeout
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
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {self._pipeline.config.api_key}",
                "User-Agent": _USER_AGENT,
            },
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._inflight: Batch | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="warden-client", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # The caller's side: appends only, never a network wait.

    def _deployment(self, deployment: uuid.UUID | str | None) -> str:
        if deployment is not None:
            return deployment_id(deployment)
        if self.deployment is None:
            raise ValueError("no deployment: pass deployment= here or to the client")
        return self.deployment

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
        if self._closed:
            raise RuntimeError("this WardenClient is closed")
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
        self._pipeline.enqueue("inferences", self._deployment(deployment), record)
        self._nudge()
        return str(record["request_id"])

    def log_label(
        self, request_id: str, label_value: object, *, deployment: uuid.UUID | str | None = None
    ) -> None:
        """Queue the ground truth of an inference logged before (the first label wins)."""
        if self._closed:
            raise RuntimeError("this WardenClient is closed")
        record = label(request_id=request_id, value=label_value)
        self._pipeline.enqueue("labels", self._deployment(deployment), record)
        self._nudge()

    def _nudge(self) -> None:
        if len(self._pipeline.buffer) >= self._pipeline.config.batch_size:
            self._wake.set()

    @property
    def stats(self) -> Stats:
        """Return a snapshot of the counts (what was logged, sent, spooled, refused)."""
        with self._pipeline.lock:
            return Stats(**self._pipeline.stats.to_dict())

    @property
    def queued(self) -> int:
        """Records waiting in memory (never more than ``max_queue``)."""
        return len(self._pipeline.buffer)

    @property
    def spool_dir(self) -> Path:
        """The spool directory (``pending/`` and ``dead/`` inside)."""
        return self._pipeline.spool.directory

    def pending_files(self) -> list[Path]:
        """Return the spooled batches waiting to be sent."""
        return self._pipeline.spool.pending()

    def dead_letters(self) -> list[Path]:
        """Return the batches Warden refused for good, with their reasons inside."""
        return self._pipeline.spool.dead()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything waiting, in memory and in the spool; ``True`` once all is sent.

        Returns ``False`` when ``timeout`` seconds passed first (Warden still down): nothing is
        lost, what is left waits in memory or in the spool.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._idle.clear()  # the sender sets it again at the end of its next cycle
            self._wake.set()
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not self._idle.wait(left):
                return False
            if self.queued == 0 and self._inflight is None and not self._pipeline.spool.pending():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            pause = max(self._pipeline.backoff.waiting, 0.01)
            time.sleep(pause if left is None else min(pause, left))

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush for up to ``timeout`` seconds, spool what is left, stop the thread.

        Returns:
            Whether everything was sent (else the rest waits in the spool for the next client).
        """
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self._at_exit)
        sent = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(self._pipeline.config.timeout, 1.0) + 1.0)
        inflight = self._inflight
        if inflight is not None:  # still trying to reach Warden: keep a copy on disk
            self._pipeline.park([inflight])
        self._pipeline.park(self._pipeline.buffer.take(self._pipeline.config.max_queue))
        self._http.close()
        return sent

    def _at_exit(self) -> None:
        self.close(self.exit_timeout)

    def __enter__(self) -> WardenClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The sender thread.

    def _post(self, batch: Batch) -> Verdict:
        try:
            response = self._http.post(self._pipeline.config.route(batch), json=batch.body())
        except httpx.HTTPError as error:
            return judge_error(error)
        return judge(response)

    def _run(self) -> None:
        pipeline = self._pipeline
        while not self._stop.is_set():
            wait = pipeline.config.flush_interval - pipeline.buffer.age()
            if pipeline.backoff.waiting:
                wait = min(wait, pipeline.backoff.waiting)
            if self._wake.wait(max(wait, 0.0)):
                self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._cycle(flushing=not self._idle.is_set())
            except Exception:  # keep the sender alive: a spool write failing is logged
                log.exception("warden-client sender failed; retrying")
                time.sleep(min(pipeline.config.flush_interval, 1.0))
            self._idle.set()

    def _cycle(self, *, flushing: bool) -> None:
        pipeline = self._pipeline
        while pipeline.due() or (flushing and len(pipeline.buffer)):
            for batch in pipeline.buffer.take(pipeline.config.batch_size):
                if pipeline.down or pipeline.backoff.waiting:
                    pipeline.park([batch])
                    continue
                self._inflight = batch
                pipeline.settle(batch, self._post(batch))
                self._inflight = None
                if self._stop.is_set():
                    return
        if pipeline.backoff.waiting:
            return
        for path in pipeline.spool.pending():
            spooled = pipeline.spool.read(path)
            if spooled is None:
                continue
            if not pipeline.settle(spooled, self._post(spooled), path) or self._stop.is_set():
                return
            if pipeline.due():  # fresh records go first; the spool resumes next cycle
                self._wake.set()
                return
