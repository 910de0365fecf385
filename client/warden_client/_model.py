"""``monitored(model, client)``: a scikit-learn-style model whose answers are logged to Warden.

The wrapper calls the model, queues one record per row (features, prediction, score or class
probabilities, a fresh request id) and returns exactly what the model returned. Logging never
changes or breaks a prediction: a failure to build a record is logged and the answer returned.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from warden_client._records import deployment_id

__all__ = ["InferenceLog", "MonitoredModel", "monitored"]

log = logging.getLogger("warden_client")


class InferenceLog(Protocol):
    """What the wrapper and the middleware need of a client (sync or async)."""

    def log(
        self,
        features: Mapping[str, object],
        *,
        prediction: object = None,
        score: object = None,
        probabilities: Mapping[object, object] | None = None,
        request_id: str | None = None,
        deployment: uuid.UUID | str | None = None,
    ) -> str:
        """Queue one inference; return its request id."""
        ...


def _plain(values: Any) -> list[Any]:
    return list(values.tolist() if hasattr(values, "tolist") else values)


def feature_rows(frame: Any, names: Sequence[str] | None) -> list[dict[str, object]]:
    """Return one ``{feature: value}`` per row of a DataFrame, an array or a list of rows."""
    if hasattr(frame, "columns") and hasattr(frame, "to_dict"):
        rows: list[dict[Any, Any]] = frame.to_dict(orient="records")
        return [{str(k): v for k, v in row.items()} for row in rows]
    out: list[dict[str, object]] = []
    for row in _plain(frame):
        if isinstance(row, Mapping):
            out.append({str(k): v for k, v in row.items()})
            continue
        cells = (
            _plain(row) if not isinstance(row, str | bytes) and hasattr(row, "__iter__") else [row]
        )
        keys = list(names) if names is not None else [f"x{i}" for i in range(len(cells))]
        out.append(dict(zip(keys, cells, strict=True)))
    return out


class MonitoredModel:
    """A model whose ``predict`` and ``predict_proba`` answers are logged; the rest passes."""

    def __init__(
        self,
        model: Any,
        client: InferenceLog,
        *,
        deployment: uuid.UUID | str | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.client = client
        self.deployment = None if deployment is None else deployment_id(deployment)
        known = getattr(model, "feature_names_in_", None)
        self.feature_names = (
            list(feature_names)
            if feature_names is not None
            else None
            if known is None
            else [str(n) for n in _plain(known)]
        )
        self.last_request_ids: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def predict(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        """Return the model's predictions unchanged; log one record per row."""
        answer = self.model.predict(features, *args, **kwargs)
        self._log(features, predictions=_safe_plain(answer), probabilities=None)
        return answer

    def predict_proba(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        """Return the model's class probabilities unchanged; log prediction and score per row."""
        answer = self.model.predict_proba(features, *args, **kwargs)
        self._log(features, predictions=None, probabilities=_safe_plain(answer))
        return answer

    def _log(
        self, features: Any, *, predictions: list[Any] | None, probabilities: list[Any] | None
    ) -> None:
        self.last_request_ids = []
        try:
            rows = feature_rows(features, self.feature_names)
            classes = getattr(self.model, "classes_", None)
            labels = None if classes is None else _plain(classes)
            for index, row in enumerate(rows):
                prediction: object = None if predictions is None else predictions[index]
                score: object = None
                by_class: dict[object, object] | None = None
                if probabilities is not None:
                    probs = _plain(probabilities[index])
                    best = max(range(len(probs)), key=probs.__getitem__)
                    prediction = best if labels is None else labels[best]
                    if len(probs) == 2:
                        score = probs[1]
                    else:
                        names = labels if labels is not None else list(range(len(probs)))
                        by_class = dict(zip(names, probs, strict=True))
                self.last_request_ids.append(
                    self.client.log(
                        row,
                        prediction=prediction,
                        score=score,
                        probabilities=by_class,
                        deployment=self.deployment,
                    )
                )
        except Exception:
            log.exception("could not log a prediction to Warden; the answer is returned as is")


def _safe_plain(values: Any) -> list[Any] | None:
    try:
        return _plain(values)
    except TypeError:
        return None


def monitored(
    model: Any,
    client: InferenceLog,
    *,
    deployment: uuid.UUID | str | None = None,
    feature_names: Sequence[str] | None = None,
) -> MonitoredModel:
    """Wrap ``model`` so its predictions are logged to Warden through ``client``.

    Args:
        model: Anything with ``predict`` (and ``predict_proba`` for scores).
        client: A :class:`~warden_client.WardenClient` or :class:`~warden_client.AsyncWardenClient`.
        deployment: The deployment's UUID or name (the client's default when omitted).
        feature_names: Column names for array input (``model.feature_names_in_``, else ``x0``…).
    """
    return MonitoredModel(model, client, deployment=deployment, feature_names=feature_names)
