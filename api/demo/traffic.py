"""Step 4: production traffic through the predict endpoint, then a population shift, with labels.

The shift is drawn from the data itself (:data:`~api.demo.options.SHIFT`); files the demo makes
are recorded as dataset versions through the OpenLineage endpoint, as a team's jobs would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.demo.adult import FEATURES, read_adult
from api.demo.context import Demo
from api.demo.options import DEPLOYMENT, PROJECT, SHIFT, DemoFailed

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "cell",
    "first_row",
    "read_adult_file",
    "record_dataset",
    "send_traffic",
    "share",
    "step_traffic",
]


def read_adult_file(demo: Demo, name: str) -> pd.DataFrame:
    """Read one of the shipped Adult files."""
    return read_adult(str(demo.adult / name))


def record_dataset(
    demo: Demo, *, job: str, name: str, path: Path, inputs: list[str], rows: int
) -> str:
    """Record a file as a dataset version through the OpenLineage endpoint; return its id."""
    scientist = demo.person("data_scientist")
    now = datetime.now(UTC).isoformat()
    version = f"{path.name}@{now}"
    event = {
        "eventType": "COMPLETE",
        "eventTime": now,
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "warden-demo", "name": job, "facets": {}},
        "inputs": [
            {
                "namespace": "file",
                "name": uri,
                "facets": {"dataSource": {"name": "file", "uri": uri}},
            }
            for uri in inputs
        ],
        "outputs": [
            {
                "namespace": "file",
                "name": name,
                "facets": {
                    "dataSource": {"name": "file", "uri": str(path)},
                    "version": {"datasetVersion": version},
                    "outputStatistics": {"rowCount": rows},
                },
            }
        ],
        "producer": "https://github.com/warden/warden/demo",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    demo.api.call("POST", f"/api/v1/lineage?project={PROJECT}", scientist, json=event)
    versions = demo.api.call(
        "GET",
        f"{demo.base}/datasets/versions",
        scientist,
        params={"namespace": "file", "name": name},
    )
    return str(versions[0]["id"])


def send_traffic(demo: Demo, frame: pd.DataFrame, *, prefix: str, label_share: float) -> None:
    """Send rows through the predict endpoint and post labels for a share of them."""
    scientist = demo.person("data_scientist")
    deployment_id = demo.facts["deployment_id"]
    batch = 250
    sent = labelled = 0
    for start in range(0, len(frame), batch):
        chunk = frame.iloc[start : start + batch]
        rows = [
            {k: cell(v) for k, v in row.items()}
            for row in chunk[FEATURES].to_dict(orient="records")
        ]
        ids = [f"{prefix}-{start + i}" for i in range(len(rows))]
        # The predict route logs what it answered, under our request ids, for the monitors.
        answer = demo.api.call(
            "POST",
            f"{demo.base}/deployments/{DEPLOYMENT}/predict",
            scientist,
            json={"rows": rows, "request_ids": ids},
        )
        if answer.get("logged") != len(rows):
            raise DemoFailed(
                "4", f"the predict route logged {answer.get('logged')} of {len(rows)} rows"
            )
        cut = int(len(rows) * label_share)
        labels = [
            {"request_id": rid, "label": int(y)}
            for rid, y in zip(ids[:cut], chunk["income"].iloc[:cut], strict=True)
        ]
        if labels:
            demo.api.call(
                "POST",
                f"{demo.base}/deployments/{deployment_id}/labels",
                scientist,
                json={"labels": labels},
            )
        sent += len(rows)
        labelled += len(labels)
    demo.console.say(
        f"      {sent} requests answered (and logged) by the predict endpoint, "
        f"{labelled} labels posted ({prefix})"
    )
    demo.facts.setdefault("traffic", {})[prefix] = {"requests": sent, "labels": labelled}


def step_traffic(demo: Demo) -> None:
    """Send ordinary traffic, then the shifted population."""
    test = read_adult_file(demo, "adult.test.gz")
    normal = test.sample(n=1000, random_state=7)
    rest = test.drop(normal.index)
    shifted_pool = rest[(rest["age"] >= 40) & (rest["marital_status"] == "Married-civ-spouse")]
    shifted = shifted_pool.sample(n=min(3000, len(shifted_pool)), random_state=11)
    demo.console.say(
        f"      shift: {SHIFT} are {share(test, shifted_pool):.0%} of the Adult test rows; "
        "the later traffic is all of them"
    )
    send_traffic(demo, normal, prefix="normal", label_share=0.6)
    send_traffic(demo, shifted, prefix="shifted", label_share=0.6)
    demo.facts["shift"] = SHIFT


def cell(value: Any) -> Any:
    """Return a frame value as JSON can carry it (NaN as ``None``, numpy scalars as Python)."""
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


def share(whole: pd.DataFrame, part: pd.DataFrame) -> float:
    """Return the share of ``whole`` that ``part`` is."""
    return len(part) / max(len(whole), 1)


def first_row(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the features of a frame's first row, as the predict endpoint takes them."""
    return {str(k): cell(v) for k, v in frame[FEATURES].iloc[0].items()}
