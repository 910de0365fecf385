"""Step 3: the reference baseline, five monitors, and alerting to the local webhook receiver."""

from __future__ import annotations

from typing import Any

from api.demo.context import Demo
from api.demo.options import MONITOR_KINDS
from api.demo.traffic import read_adult_file, record_dataset

__all__ = ["step_monitors"]


def step_monitors(demo: Demo) -> None:
    """Build the baseline from the training data, schedule the monitors, route drift alerts."""
    scientist, admin = demo.person("data_scientist"), demo.admin
    assert admin is not None
    train = read_adult_file(demo, "adult.data.gz")
    reference = demo.data_dir / "exports" / "reference-adult-train.csv"
    reference.parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(reference, index=False)
    version_id = record_dataset(
        demo,
        job="reference-snapshot",
        name="adult-reference",
        path=reference,
        inputs=[str(demo.adult / "adult.data.gz")],
        rows=len(train),
    )
    baseline = demo.api.call(
        "POST",
        f"{demo.base}/baselines",
        scientist,
        json={
            "deployment_id": demo.facts["deployment_id"],
            "dataset_version_id": version_id,
            "label_column": "income",
            "positive_label": 1,
        },
    )
    demo.facts["baseline_id"] = baseline["id"]
    demo.console.say(f"      baseline {baseline['id']} from {len(train)} training rows")
    specs: dict[str, dict[str, Any]] = {
        "drift": {"kind": "drift", "thresholds": {"drift_share": 0.25}},
        "quality": {"kind": "quality"},
        "performance": {"kind": "performance", "positive_label": 1},
        "fairness": {"kind": "fairness", "sensitive_features": ["sex", "race"]},
        "explanations": {"kind": "explanations"},
    }
    intervals = {"drift": 20, "quality": 30, "performance": 30, "fairness": 45}
    monitors = {}
    for kind in MONITOR_KINDS:
        created = demo.api.call(
            "POST",
            f"{demo.base}/monitors",
            scientist,
            json={
                "name": f"income-{kind}",
                "deployment_id": demo.facts["deployment_id"],
                "spec": specs[kind],
                "schedule": {"interval_seconds": intervals.get(kind, 60)},
                "window": "last:30m",
            },
        )
        monitors[kind] = created["id"]
    demo.facts["monitors"] = monitors
    demo.console.say(
        "      monitors every " + ", ".join(f"{k} {intervals.get(k, 60)} s" for k in MONITOR_KINDS)
    )
    # The administrator allows the local receiver (loopback is refused unless allowed).
    demo.api.call(
        "POST",
        f"{demo.base}/outbound-allowlist",
        admin,
        json={"target": "127.0.0.1", "note": "the demo's local webhook receiver"},
    )
    channel = demo.api.call(
        "POST",
        f"{demo.base}/alert-channels",
        admin,
        json={"kind": "webhook", "name": "demo-receiver", "url": demo.receiver.url},
    )
    demo.api.call(
        "POST",
        f"{demo.base}/alert-rules",
        admin,
        json={
            "name": "drift on income-api",
            "monitor_kinds": ["drift"],
            "min_status": "alert",
            "channel_ids": [channel["channel"]["id"]],
        },
    )
    demo.facts["webhook"] = demo.receiver.url
    demo.console.say(f"      alerts go to the local webhook receiver {demo.receiver.url}")
