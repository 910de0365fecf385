"""``warden demo``: Warden's whole loop on the shipped UCI Adult data, against a real server.

The demo is a client of Warden like any team would be. It starts what ``warden up`` starts —
the API and dashboard (uvicorn on ``127.0.0.1:<port>``), the scheduler and one worker, all on a
fresh embedded store under ``./.warden/`` — and then drives every step through the public REST
API, with the people it created, so each action is permission-checked and audited as in real use:

1. store, administrator and people (data scientist, approver, auditor) with fresh credentials;
2. a retraining pipeline run trains the income model, evaluation (fairness by sex and race),
   promotion request, approval by the approver, promotion to champion;
3. the reference baseline and five monitors (drift, data quality, performance, fairness,
   explanations) on intervals of seconds; an alert rule to a local webhook receiver that the
   administrator allow-lists, and a policy that opens an incident and retrains on drift;
4. production traffic through the predict endpoint, then a population shift drawn from the data
   itself (married people aged 40 and over), logged with labels for part of it;
5. the monitors find the shift, the policy opens an incident, the webhook hears of it and the
   retraining pipeline runs on the champion's training data plus the recent labelled traffic; the
   challenger is evaluated against the champion, approved and promoted; a rollback policy is set;
6. model card and project audit report, audit chain verification, a summary with links.

Every wait is bounded: a step that does not happen in time stops the demo with a non-zero exit
saying which step and why (:class:`DemoFailed`); nothing is simulated.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from api.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["DEMO_MARKER", "DemoFailed", "DemoOptions", "WebhookReceiver", "find_adult_data", "run"]

DEMO_MARKER = "demo.json"
"""The file inside a data directory that marks it as a demo store (safe to wipe and rebuild)."""

PROJECT = "census"
MODEL = "income"
DEPLOYMENT = "income-api"
TRAIN_PIPELINE = "income-train"
RETRAIN_PIPELINE = "income-retrain"
PEOPLE = {"dana": "data_scientist", "avery": "approver", "alex": "auditor"}
MONITOR_KINDS = ("drift", "quality", "performance", "fairness", "explanations")
SHIFT = "married people aged 40 and over"
_READ_RETRIES = 5

T = TypeVar("T")


class DemoFailed(Exception):
    """A step of the loop did not happen (in time): the demo stops and says which and why."""

    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"step {step} failed: {why}")
        self.step = step
        self.why = why


@dataclass(frozen=True)
class DemoOptions:
    """What ``warden demo`` was asked to do.

    Attributes:
        root: The directory the store goes under (``<root>/.warden``).
        host: The interface the server binds.
        port: The port the server binds.
        reset: Wipe an existing store that is not a demo store.
        serve: Keep serving the dashboard after the loop until Ctrl-C.
        json_path: Where to write the machine-readable summary, if anywhere.
        step_timeout: The longest any single wait may take, in seconds.
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 8000
    reset: bool = False
    serve: bool = True
    json_path: Path | None = None
    step_timeout: float = 600.0


@dataclass
class _Person:
    name: str
    role: str
    password: str
    key: str
    id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class _Summary:
    started_at: str
    base_url: str
    data_dir: str
    project: str = PROJECT
    people: dict[str, dict[str, str]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def find_adult_data() -> Path:
    """Return the shipped ``data/adult`` directory (repository or installed checkout).

    Raises:
        DemoFailed: Neither the package's checkout nor the working directory has it.
    """
    candidates = [Path(__file__).resolve().parents[1] / "data" / "adult", Path.cwd() / "data/adult"]
    for candidate in candidates:
        if (candidate / "adult.data.gz").is_file() and (candidate / "adult.test.gz").is_file():
            return candidate
    raise DemoFailed(
        "1", f"the UCI Adult data is not in {' or '.join(map(str, candidates))}; reinstall Warden"
    )


class WebhookReceiver:
    """A tiny local HTTP server that records the webhook events Warden delivers to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {"raw": body.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.events.append(
                        {"signature": self.headers.get("webhook-signature"), "event": event}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the URL Warden posts to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/warden"

    def start(self) -> None:
        """Start answering in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering (``shutdown`` would wait forever for a loop that never started)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[dict[str, Any]]:
        """Return a copy of what arrived so far."""
        with self._lock:
            return list(self.events)


class _Console:
    def __init__(self, summary: _Summary) -> None:
        self.summary = summary
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)

    @contextmanager
    def step(self, number: str, title: str) -> Iterator[None]:
        self.say(f"\n[{number}/6] {title}")
        began = time.monotonic()
        try:
            yield
        except DemoFailed:
            raise
        except Exception as error:
            raise DemoFailed(number, f"{type(error).__name__}: {error}") from error
        took = time.monotonic() - began
        self.summary.steps.append({"step": number, "title": title, "seconds": round(took, 1)})
        self.say(f"      done in {took:.1f} s (total {time.monotonic() - self.started:.0f} s)")


class _Api:
    """The demo's REST client: every call checked, failures name the step and the answer."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=120.0)
        self.step = "?"

    def call(
        self,
        method: str,
        path: str,
        who: _Person,
        *,
        expect: tuple[int, ...] = (200, 201, 202),
        **kwargs: Any,
    ) -> Any:
        answer = self.client.request(method, path, headers=who.headers, **kwargs)
        retries = 0
        while method == "GET" and answer.status_code >= 500 and retries < _READ_RETRIES:
            # A read can meet the embedded store's write lock held by a long job; a client retries.
            retries += 1
            print(f"      (GET {path} answered {answer.status_code}; retrying)", flush=True)
            time.sleep(2.0 * retries)
            answer = self.client.request(method, path, headers=who.headers, **kwargs)
        if answer.status_code not in expect:
            raise DemoFailed(
                self.step,
                f"{method} {path} as {who.name} answered {answer.status_code}: {answer.text[:800]}",
            )
        if not answer.content:
            return None
        if "json" in answer.headers.get("content-type", ""):
            return answer.json()
        return answer.text

    def close(self) -> None:
        self.client.close()


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.data_dir = (options.root / ".warden").resolve()
        self.base_url = f"http://{options.host}:{options.port}"
        self.summary = _Summary(
            started_at=datetime.now(UTC).isoformat(),
            base_url=self.base_url,
            data_dir=str(self.data_dir),
        )
        self.console = _Console(self.summary)
        self.api = _Api(self.base_url)
        self.people: dict[str, _Person] = {}
        self.admin: _Person | None = None
        self.adult = find_adult_data()
        self.receiver = WebhookReceiver()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: Any = None
        self.engine: Engine | None = None
        self.facts = self.summary.facts

    # ----------------------------------------------------------------- helpers

    @property
    def base(self) -> str:
        return f"/api/v1/projects/{PROJECT}"

    def person(self, role: str) -> _Person:
        return next(p for p in self.people.values() if p.role == role)

    def wait_for(
        self, step: str, what: str, probe: Callable[[], T | None], *, timeout: float | None = None
    ) -> T:
        """Poll ``probe`` until it returns something; fail the step after the timeout."""
        limit = timeout or self.options.step_timeout
        began = time.monotonic()
        said = 0.0
        self.console.say(f"      waiting for {what} ...")
        while True:
            found = probe()
            if found is not None:
                return found
            waited = time.monotonic() - began
            if waited > limit:
                raise DemoFailed(step, f"{what} did not happen within {limit:.0f} s")
            if waited - said >= 15:
                said = waited
                self.console.say(f"      ... still waiting for {what} ({waited:.0f} s)")
            time.sleep(1.0)

    # ----------------------------------------------------------------- store and processes

    def prepare_store(self) -> None:
        marker = self.data_dir / DEMO_MARKER
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            if not marker.exists() and not self.options.reset:
                raise DemoFailed(
                    "1",
                    f"{self.data_dir} holds a Warden store that is not a demo store; "
                    "run 'warden demo --reset' to wipe it, or run the demo in another directory",
                )
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        marker.write_text(json.dumps({"demo": True, "created_at": self.summary.started_at}))

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            database_url=f"sqlite:///{self.data_dir / 'warden.db'}",
            mlflow_tracking_uri=f"sqlite:///{self.data_dir / 'mlflow.db'}",
            host=self.options.host,
            port=self.options.port,
            scheduler_sync_seconds=5.0,
            scheduler_heartbeat_seconds=1.0,
            worker_poll_seconds=0.5,
            worker_heartbeat_seconds=5.0,
            worker_lease_seconds=600.0,
        )

    def start_processes(self) -> None:
        """Start what ``warden up`` runs: API + dashboard, scheduler and one worker."""
        import uvicorn

        from api.app import create_app
        from api.migrate import upgrade
        from api.scheduler import Scheduler
        from api.worker import run_worker
        from lineage import create_store_engine

        with socket.socket() as probe:
            if probe.connect_ex((self.options.host, self.options.port)) == 0:
                raise DemoFailed(
                    "1", f"port {self.options.port} is taken; pass --port with a free one"
                )
        settings = self.settings()
        upgrade(settings.resolved_database_url())
        self.engine = engine = create_store_engine(settings.resolved_database_url())
        self.threads = [
            threading.Thread(
                target=Scheduler(engine=engine, settings=settings).run,
                args=(self.stop,),
                name="scheduler",
            ),
            threading.Thread(target=run_worker, args=(settings, engine, self.stop), name="worker"),
        ]
        config = uvicorn.Config(
            create_app(settings, engine=engine),
            host=self.options.host,
            port=self.options.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.threads.append(threading.Thread(target=self.server.run, name="api"))
        for thread in self.threads:
            thread.start()

        def healthy() -> bool | None:
            try:
                return True if self.api.client.get("/healthz").is_success else None
            except httpx.TransportError:
                return None

        self.wait_for("1", f"the API on {self.base_url}", healthy, timeout=60)
        self.receiver.start()

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        self.receiver.stop()
        self.api.close()
        if self.engine is not None:
            self.engine.dispose()

    # ----------------------------------------------------------------- step 1

    def step_people(self) -> None:
        from governance.identity import bootstrap_admin
        from lineage.store import session_scope

        assert self.engine is not None
        with session_scope(self.engine) as session:
            issued = bootstrap_admin(session=session, name="admin")
            admin_key = issued.secret
        self.admin = admin = _Person("admin", "admin", "", admin_key)
        self.api.call(
            "POST",
            "/api/v1/projects",
            admin,
            json={"name": PROJECT, "description": "Income classifier on UCI Adult (demo)"},
        )
        for name, role in PEOPLE.items():
            password = secrets.token_urlsafe(15)
            created = self.api.call(
                "POST", "/api/v1/principals", admin, json={"name": name, "password": password}
            )
            key = self.api.call(
                "POST",
                f"/api/v1/principals/{created['id']}/keys",
                admin,
                json={"label": "warden demo"},
            )["key"]
            self.api.call(
                "POST",
                f"{self.base}/grants",
                admin,
                json={"principal_id": created["id"], "role": role},
            )
            self.people[name] = _Person(name, role, password, key, created["id"])
        self.summary.people = {
            p.name: {"role": p.role, "password": p.password, "api_key": p.key}
            for p in [admin, *self.people.values()]
        }
        self.console.say("      credentials (shown once; the store keeps only hashes):")
        self.console.say(f"        {'admin':6} administrator   API key {admin.key}")
        for p in self.people.values():
            self.console.say(
                f"        {p.name:6} {p.role:15} password {p.password}  API key {p.key}"
            )

    # ----------------------------------------------------------------- step 2

    def run_pipeline(self, step: str, pipeline: str, reason: str, who: _Person) -> dict[str, Any]:
        run = self.api.call(
            "POST", f"{self.base}/pipelines/{pipeline}/runs", who, json={"reason": reason}
        )
        return self.wait_pipeline(step, run["id"], who)

    def wait_pipeline(self, step: str, run_id: str, who: _Person) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = self.api.call("GET", f"{self.base}/pipeline-runs/{run_id}", who)
            return run if run["state"] in {"succeeded", "failed", "cancelled"} else None

        done = self.wait_for(step, f"pipeline run {run_id} to finish on the worker", finished)
        if done["state"] != "succeeded":
            raise DemoFailed(
                step,
                f"pipeline run {run_id} {done['state']}: {done.get('error')}\n"
                f"{done.get('log_tail', '')[-2000:]}",
            )
        return done

    def evaluation(self, step: str, version: str, who: _Person) -> dict[str, Any]:
        def stored() -> dict[str, Any] | None:
            rows = self.api.call(
                "GET", f"{self.base}/models/{MODEL}/versions/{version}/evaluations", who
            )
            return rows[0] if rows else None

        return self.wait_for(step, f"the evaluation of version {version}", stored, timeout=120)

    def promote(self, version: str, reason: str) -> dict[str, Any]:
        scientist, approver = self.person("data_scientist"), self.person("approver")
        asked = self.api.call(
            "POST",
            f"{self.base}/models/{MODEL}/versions/{version}/promotion-requests",
            scientist,
            json={"reason": reason},
        )
        own = self.api.call(
            "POST",
            f"{self.base}/approvals/{asked['approval_id']}/approve",
            scientist,
            json={"reason": "my own model"},
            expect=(403,),
        )
        self.console.say(f"      {scientist.name} cannot approve it herself: {own['detail']}")
        self.api.call(
            "POST",
            f"{self.base}/approvals/{asked['approval_id']}/approve",
            approver,
            json={"reason": f"reviewed the evaluation of version {version}"},
        )
        promoted: dict[str, Any] = self.api.call(
            "POST",
            f"{self.base}/models/{MODEL}/versions/{version}/promote",
            scientist,
            json={"deployment": DEPLOYMENT, "environment": "production", "reason": reason},
        )
        self.console.say(
            f"      {approver.name} approved; version {version} is live in {DEPLOYMENT} "
            f"(approval {asked['approval_id']})"
        )
        return promoted

    def step_train(self) -> None:
        scientist = self.person("data_scientist")
        spec = {
            "name": TRAIN_PIPELINE,
            "model_name": MODEL,
            "description": "Income classifier on UCI Adult",
            "steps": [{"name": "train", "entrypoint": "retrain.adult:train"}],
            "parameters": {"train_path": str(self.adult / "adult.data.gz"), "max_iter": 100},
            "evaluation": {
                "holdout_uri": str(self.adult / "adult.test.gz"),
                "reader": "retrain.adult:read_adult",
                "target": "income",
                "sensitive_features": ["sex", "race"],
                "max_rows": 5000,
            },
        }
        self.define_pipeline(spec, scientist)
        run = self.run_pipeline("2", TRAIN_PIPELINE, "first income model", scientist)
        version = str(run["model_version"])
        self.console.say(
            f"      pipeline run {run['id']} registered {MODEL} v{version}; metrics "
            + ", ".join(f"{k} {_metric(v)}" for k, v in sorted(run["metrics"].items()))
        )
        evaluation = self.evaluation("2", version, scientist)
        self.report_evaluation(evaluation)
        promoted = self.promote(version, "first income model")
        self.facts["champion"] = {
            "version": version,
            "pipeline_run_id": run["id"],
            "promotion_id": promoted["id"],
        }
        deployments = self.api.call("GET", f"{self.base}/deployments", scientist)
        live = next(
            d for d in deployments if d["name"] == DEPLOYMENT and d.get("live_until") is None
        )
        self.facts["deployment_id"] = live["id"]

    def define_pipeline(self, spec: dict[str, Any], who: _Person) -> None:
        self.api.call("POST", f"{self.base}/pipelines", who, json=spec)

    def report_evaluation(self, evaluation: dict[str, Any]) -> None:
        performance = evaluation["performance"]
        candidate = performance.get("candidate", performance)
        accuracy = candidate.get("accuracy")
        self.console.say(
            f"      evaluated on {evaluation['rows']} held-out rows, fairness by "
            f"{' and '.join(evaluation['sensitive_features'])}"
            + (f"; accuracy {_number(accuracy)}" if accuracy is not None else "")
        )
        fairness = evaluation.get("fairness") or {}
        for feature in evaluation["sensitive_features"]:
            gap = _find_metric(fairness, feature, "demographic_parity_difference")
            if gap is not None:
                self.console.say(f"      demographic parity difference by {feature}: {gap}")

    # ----------------------------------------------------------------- step 3

    def step_monitors(self) -> None:
        scientist, admin = self.person("data_scientist"), self.admin
        assert admin is not None
        train = self.read("adult.data.gz")
        reference = self.data_dir / "exports" / "reference-adult-train.csv"
        reference.parent.mkdir(parents=True, exist_ok=True)
        train.to_csv(reference, index=False)
        version_id = self.record_dataset(
            job="reference-snapshot",
            name="adult-reference",
            path=reference,
            inputs=[str(self.adult / "adult.data.gz")],
            rows=len(train),
        )
        baseline = self.api.call(
            "POST",
            f"{self.base}/baselines",
            scientist,
            json={
                "deployment_id": self.facts["deployment_id"],
                "dataset_version_id": version_id,
                "label_column": "income",
                "positive_label": 1,
            },
        )
        self.facts["baseline_id"] = baseline["id"]
        self.console.say(f"      baseline {baseline['id']} from {len(train)} training rows")
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
            created = self.api.call(
                "POST",
                f"{self.base}/monitors",
                scientist,
                json={
                    "name": f"income-{kind}",
                    "deployment_id": self.facts["deployment_id"],
                    "spec": specs[kind],
                    "schedule": {"interval_seconds": intervals.get(kind, 60)},
                    "window": "last:30m",
                },
            )
            monitors[kind] = created["id"]
        self.facts["monitors"] = monitors
        self.console.say(
            "      monitors every "
            + ", ".join(f"{k} {intervals.get(k, 60)} s" for k in MONITOR_KINDS)
        )
        # The administrator allows the local receiver (loopback is refused unless allowed).
        self.api.call(
            "POST",
            f"{self.base}/outbound-allowlist",
            admin,
            json={"target": "127.0.0.1", "note": "the demo's local webhook receiver"},
        )
        channel = self.api.call(
            "POST",
            f"{self.base}/alert-channels",
            admin,
            json={"kind": "webhook", "name": "demo-receiver", "url": self.receiver.url},
        )
        self.api.call(
            "POST",
            f"{self.base}/alert-rules",
            admin,
            json={
                "name": "drift on income-api",
                "monitor_kinds": ["drift"],
                "min_status": "alert",
                "channel_ids": [channel["channel"]["id"]],
            },
        )
        self.facts["webhook"] = self.receiver.url
        self.console.say(f"      alerts go to the local webhook receiver {self.receiver.url}")

    # ----------------------------------------------------------------- step 4

    def read(self, name: str) -> pd.DataFrame:
        from retrain.adult import read_adult

        return read_adult(str(self.adult / name))

    def record_dataset(
        self, *, job: str, name: str, path: Path, inputs: list[str], rows: int
    ) -> str:
        """Record a file as a dataset version through the OpenLineage endpoint; return its id."""
        scientist = self.person("data_scientist")
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
        self.api.call("POST", f"/api/v1/lineage?project={PROJECT}", scientist, json=event)
        versions = self.api.call(
            "GET",
            f"{self.base}/datasets/versions",
            scientist,
            params={"namespace": "file", "name": name},
        )
        return str(versions[0]["id"])

    def send_traffic(self, frame: pd.DataFrame, *, prefix: str, label_share: float) -> None:
        from retrain.adult import FEATURES

        scientist = self.person("data_scientist")
        deployment_id = self.facts["deployment_id"]
        batch = 250
        sent = labelled = 0
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            rows = [
                {k: _cell(v) for k, v in row.items()}
                for row in chunk[FEATURES].to_dict(orient="records")
            ]
            ids = [f"{prefix}-{start + i}" for i in range(len(rows))]
            # The predict route logs what it answered, under our request ids, for the monitors.
            answer = self.api.call(
                "POST",
                f"{self.base}/deployments/{DEPLOYMENT}/predict",
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
                self.api.call(
                    "POST",
                    f"{self.base}/deployments/{deployment_id}/labels",
                    scientist,
                    json={"labels": labels},
                )
            sent += len(rows)
            labelled += len(labels)
        self.console.say(
            f"      {sent} requests answered (and logged) by the predict endpoint, "
            f"{labelled} labels posted ({prefix})"
        )
        self.facts.setdefault("traffic", {})[prefix] = {"requests": sent, "labels": labelled}

    def step_traffic(self) -> None:
        test = self.read("adult.test.gz")
        normal = test.sample(n=1000, random_state=7)
        rest = test.drop(normal.index)
        shifted_pool = rest[(rest["age"] >= 40) & (rest["marital_status"] == "Married-civ-spouse")]
        shifted = shifted_pool.sample(n=min(3000, len(shifted_pool)), random_state=11)
        self.console.say(
            f"      shift: {SHIFT} are {_share(test, shifted_pool):.0%} of the Adult test rows; "
            "the later traffic is all of them"
        )
        self.send_traffic(normal, prefix="normal", label_share=0.6)
        self.send_traffic(shifted, prefix="shifted", label_share=0.6)
        self.facts["shift"] = SHIFT

    # ----------------------------------------------------------------- step 5

    def export_recent_labelled(self) -> str:
        """Export the labelled traffic from Warden's inference log as a dataset version."""
        from lineage.models import Deployment
        from lineage.store import session_scope
        from monitors.inferences import read_window

        assert self.engine is not None
        with session_scope(self.engine) as session:
            deployment = session.get(Deployment, uuid.UUID(self.facts["deployment_id"]))
            assert deployment is not None
            window, _ = read_window(
                session=session,
                data_dir=self.data_dir,
                deployment=deployment,
                start=datetime.now(UTC) - timedelta(hours=1),
                end=None,
            )
        labelled = window[window["label"].notna()].copy()
        labelled["income"] = labelled["label"].astype(int)
        from retrain.adult import FEATURES

        frame = labelled[[*FEATURES, "income"]]
        path = self.data_dir / "exports" / "recent-labelled-traffic.csv"
        frame.to_csv(path, index=False)
        self.facts["retrain_rows"] = len(frame)
        return self.record_dataset(
            job="inference-log-export",
            name="income-api-labelled-traffic",
            path=path,
            inputs=[f"warden://deployments/{self.facts['deployment_id']}/inferences"],
            rows=len(frame),
        )

    def install_policies(self) -> None:
        scientist, admin = self.person("data_scientist"), self.admin
        assert admin is not None
        recent = self.export_recent_labelled()
        train_versions = self.api.call(
            "GET",
            f"{self.base}/datasets/versions",
            scientist,
            params={"namespace": "file", "name": "adult-reference"},
        )
        spec = {
            "name": RETRAIN_PIPELINE,
            "model_name": MODEL,
            "description": "Retrain on the champion's training data plus recent labelled traffic",
            "steps": [{"name": "train", "entrypoint": "retrain.adult:train"}],
            "parameters": {"max_iter": 100},
            "training_data": {"dataset_version_ids": [train_versions[0]["id"], recent]},
            "evaluation": {
                "holdout_uri": str(self.adult / "adult.test.gz"),
                "reader": "retrain.adult:read_adult",
                "target": "income",
                "sensitive_features": ["sex", "race"],
                "max_rows": 5000,
            },
        }
        self.define_pipeline(spec, scientist)
        self.console.say(
            f"      {RETRAIN_PIPELINE}: the training data plus {self.facts['retrain_rows']} "
            "labelled production rows exported from the inference log"
        )
        document = {
            "rules": [
                {
                    "name": "retrain-on-drift",
                    "scope": {"model": MODEL},
                    "when": {
                        "monitor": "drift",
                        "metric": "drift_share",
                        "op": ">=",
                        "threshold": 0.2,
                    },
                    "consecutive_runs": 1,
                    "cooldown_seconds": 3600,
                    "actions": [
                        {"type": "open_incident"},
                        {"type": "retrain", "pipeline": RETRAIN_PIPELINE},
                    ],
                }
            ]
        }
        policy = self.api.call(
            "POST",
            f"{self.base}/policies",
            admin,
            json={"name": "drift-retrain", "document": document, "reason": "demo loop"},
        )
        self.facts["drift_policy_id"] = policy["id"]
        if policy.get("active_version") is None:
            self.api.call(
                "POST", f"{self.base}/policies/{policy['id']}/versions/1:activate", admin, json={}
            )

    def step_loop(self) -> None:
        scientist, auditor = self.person("data_scientist"), self.person("auditor")
        self.install_policies()
        monitors = self.facts["monitors"]

        def drift_found() -> dict[str, Any] | None:
            runs = self.api.call("GET", f"{self.base}/monitors/{monitors['drift']}/runs", scientist)
            for run in runs:
                summary = run.get("summary") or {}
                if run.get("state") == "succeeded" and summary.get("status") == "alert":
                    return dict(run)
            return None

        run = self.wait_for("5", "the drift monitor to find the shift", drift_found)
        summary = run["summary"]
        drifted = [
            f["scope"].removeprefix("column:")
            for f in summary.get("findings", [])
            if f.get("status") in {"warn", "alert"}
            and str(f.get("scope", "")).startswith("column:")
        ]
        self.console.say(
            f"      drift run {run['id']}: drift share {_number(summary.get('drift_share'))}; "
            f"drifted columns: {', '.join(drifted) or '-'}"
        )
        self.facts["drift_run_id"] = run["id"]

        def decided() -> dict[str, Any] | None:
            rows = self.api.call(
                "GET",
                f"{self.base}/policies/{self.facts['drift_policy_id']}/decisions",
                scientist,
            )
            fired = [r for r in rows if r.get("status") == "fire"]
            return fired[0] if fired else None

        decision = self.wait_for("5", "the drift-retrain policy to fire", decided, timeout=180)
        self.facts["decision_id"] = decision["id"]
        outcomes = decision.get("outcomes") or []
        self.console.say(f"      policy decision {decision['id']}: {_outcomes(outcomes)}")
        failed = [o for o in outcomes if o.get("outcome") != "done"]
        if failed:
            raise DemoFailed("5", f"policy actions failed: {failed}")

        def incident() -> dict[str, Any] | None:
            rows = self.api.call("GET", f"{self.base}/incidents", auditor)
            opened = [r for r in rows if r["source_kind"] == "policy"]
            return opened[0] if opened else None

        opened = self.wait_for("5", "the policy's incident", incident, timeout=120)
        self.facts["incident_id"] = opened["id"]
        self.console.say(
            f"      {opened['severity']} incident {opened['id']} opened by the policy "
            f"(alert rule {opened['rule_name']!r}, source {opened['source_id']})"
        )

        def heard() -> list[dict[str, Any]] | None:
            return self.receiver.received() or None

        events = self.wait_for("5", "the webhook receiver to hear of it", heard, timeout=120)
        self.facts["webhook_events"] = [e["event"].get("type") for e in events]
        self.console.say(
            f"      webhook received {events[0]['event'].get('type')} "
            f"(signed: {bool(events[0]['signature'])})"
        )

        run_id = next(o["pipeline_run_id"] for o in outcomes if o.get("type") == "retrain")
        retrained = self.wait_pipeline("5", run_id, scientist)
        version = str(retrained["model_version"])
        self.console.say(f"      retraining run {run_id} registered {MODEL} v{version}")
        evaluation = self.evaluation("5", version, scientist)
        self.report_evaluation(evaluation)
        self.console.say(f"      challenger v{version} vs champion: {_versus(evaluation)}")
        promoted = self.promote(version, "retrained after drift (policy drift-retrain)")
        self.facts["challenger"] = {
            "version": version,
            "pipeline_run_id": run_id,
            "promotion_id": promoted["id"],
            "evaluation_id": evaluation["id"],
        }
        answer = self.api.call(
            "POST",
            f"{self.base}/deployments/{DEPLOYMENT}/predict",
            scientist,
            json={"rows": [_first_row(self.read("adult.test.gz"))]},
        )
        if str(answer["model_version"]) != version:
            raise DemoFailed("5", f"the deployment still serves v{answer['model_version']}")
        self.console.say(f"      {DEPLOYMENT} now answers with v{version}")
        self.install_rollback_policy()

    def install_rollback_policy(self) -> None:
        admin = self.admin
        assert admin is not None
        document = {
            "rules": [
                {
                    "name": "rollback-on-accuracy-drop",
                    "scope": {"deployment": DEPLOYMENT},
                    "when": {"monitor": "performance", "metric": "accuracy", "status": "alert"},
                    "consecutive_runs": 3,
                    "cooldown_seconds": 3600,
                    "actions": [
                        {"type": "open_incident"},
                        {"type": "rollback", "mode": "request"},
                    ],
                }
            ]
        }
        policy = self.api.call(
            "POST",
            f"{self.base}/policies",
            admin,
            json={"name": "rollback-guard", "document": document, "reason": "demo loop"},
        )
        self.facts["rollback_policy_id"] = policy["id"]
        self.console.say(
            "      rollback-guard stands ready: 3 performance alerts in a row ask the approvers "
            "to roll back"
        )

    # ----------------------------------------------------------------- step 6

    def find_route(self, step: str, what: str, *needles: str) -> str:
        paths = self.api.client.get("/openapi.json").json()["paths"]
        for path, methods in paths.items():
            if "get" in methods and all(n in path for n in needles):
                return str(path)
        raise DemoFailed(step, f"this Warden has no route for the {what} (looked for {needles})")

    def step_reports(self) -> None:
        scientist, auditor = self.person("data_scientist"), self.person("auditor")
        version = self.facts["challenger"]["version"]
        card_route = self.find_route("6", "model card", "/reports/models/{name}/{version}")
        card_path = (
            card_route.replace("{project}", PROJECT)
            .replace("{name}", MODEL)
            .replace("{version}", version)
        )
        self.api.call(
            "PUT",
            f"{card_path}/card",
            scientist,
            json={
                "intended_use": "Demo: estimate whether a census respondent earns over $50K.",
                "out_of_scope_use": "Any decision about a real person.",
                "limitations": f"Retrained after production traffic shifted to {SHIFT}.",
                "ethical_considerations": "Selection rates differ by sex and race; see fairness.",
            },
        )
        reports = self.data_dir / "reports" / "demo"
        reports.mkdir(parents=True, exist_ok=True)
        card = self.api.call("GET", card_path, auditor, params={"format": "json"})
        card_file = reports / f"model-card-{MODEL}-v{version}.html"
        card_file.write_text(self.api.call("GET", card_path, auditor, params={"format": "html"}))
        report_route = self.find_route("6", "project audit report", "/reports/project")
        report_path = report_route.replace("{project}", PROJECT)
        period = {"from": self.summary.started_at}
        report = self.api.call("GET", report_path, auditor, params={**period, "format": "json"})
        report_file = reports / f"audit-report-{PROJECT}.html"
        report_file.write_text(
            self.api.call("GET", report_path, auditor, params={**period, "format": "html"})
        )
        verify = self.api.call("GET", "/api/v1/audit/verify", auditor)
        if not verify.get("intact"):
            raise DemoFailed("6", f"the audit chain does not verify: {verify}")
        self.facts["audit_verify"] = verify
        self.facts["model_card_keys"] = sorted(card) if isinstance(card, dict) else []
        self.facts["audit_report_keys"] = sorted(report) if isinstance(report, dict) else []
        login = self.api.client.get("/login")
        if login.status_code != 200:
            raise DemoFailed("6", f"the dashboard does not answer at /login ({login.status_code})")
        url = self.base_url
        self.summary.links = {
            "dashboard": f"{url}/",
            "project": f"{url}/p/{PROJECT}",
            "model": f"{url}/p/{PROJECT}/models/{MODEL}",
            "monitors": f"{url}/p/{PROJECT}/monitors",
            "incidents": f"{url}/p/{PROJECT}/incidents",
            "approvals": f"{url}/p/{PROJECT}/approvals",
            "audit": f"{url}/p/{PROJECT}/audit",
            "model_card": f"{url}{card_path}?format=html",
            "audit_report": f"{url}{report_path}?from={self.summary.started_at}",
            "model_card_file": str(card_file),
            "audit_report_file": str(report_file),
            "api_docs": f"{url}/docs",
        }
        self.console.say(f"      model card of v{version}: {card_file}")
        self.console.say(f"      project audit report: {report_file}")
        self.console.say(f"      audit chain verifies: {_verify_text(verify)}")

    # ----------------------------------------------------------------- run

    def run(self) -> int:
        steps: list[tuple[str, str, Callable[[], None]]] = [
            ("1", "fresh store, administrator and people", self.step_people),
            ("2", "train, evaluate and deploy the income model", self.step_train),
            ("3", "baseline, monitors, alerting and the webhook receiver", self.step_monitors),
            ("4", f"production traffic, then a shift to {SHIFT}", self.step_traffic),
            ("5", "monitors find the shift; policy → incident → retrain → promote", self.step_loop),
            ("6", "model card, audit report and audit verification", self.step_reports),
        ]
        print(f"Warden demo: the whole loop on UCI Adult, store in {self.data_dir}", flush=True)
        try:
            self.prepare_store()
            self.start_processes()
            for number, title, action in steps:
                self.api.step = number
                with self.console.step(number, title):
                    action()
        except DemoFailed as failure:
            self.summary.facts["failed"] = {"step": failure.step, "why": failure.why}
            self.write_json()
            print(f"\nDEMO FAILED at step {failure.step}: {failure.why}", flush=True)
            self.shutdown()
            return 1
        except BaseException:
            self.shutdown()
            raise
        self.write_json()
        self.print_summary()
        if self.options.serve:
            print(f"\nServing the dashboard at {self.base_url} — press Ctrl-C to stop.", flush=True)
            try:
                while any(t.is_alive() for t in self.threads):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        self.shutdown()
        return 0

    def write_json(self) -> None:
        if self.options.json_path is not None:
            self.options.json_path.write_text(json.dumps(_asdict(self.summary), indent=2))

    def print_summary(self) -> None:
        facts = self.facts
        print("\nWhat happened", flush=True)
        print(f"  v{facts['champion']['version']} trained, evaluated and approved as champion")
        print(f"  traffic shifted to {SHIFT}; drift found in run {facts['drift_run_id']}")
        print(f"  policy decision {facts['decision_id']} opened incident {facts['incident_id']}")
        print(f"  the webhook receiver got {', '.join(map(str, facts['webhook_events']))}")
        print(
            f"  v{facts['challenger']['version']} retrained on recent labelled data, approved, live"
        )
        print("  rollback-guard policy stands ready; the audit chain verifies")
        print("\nOpen")
        for name, url in self.summary.links.items():
            print(f"  {name:17} {url}")
        print("  sign in as alex (auditor), avery (approver) or dana (data scientist)", flush=True)


def _asdict(summary: _Summary) -> dict[str, Any]:
    return {
        "started_at": summary.started_at,
        "base_url": summary.base_url,
        "data_dir": summary.data_dir,
        "project": summary.project,
        "people": summary.people,
        "steps": summary.steps,
        "facts": summary.facts,
        "links": summary.links,
    }


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


def _share(whole: pd.DataFrame, part: pd.DataFrame) -> float:
    return len(part) / max(len(whole), 1)


def _first_row(frame: pd.DataFrame) -> dict[str, Any]:
    from retrain.adult import FEATURES

    return {str(k): _cell(v) for k, v in frame[FEATURES].iloc[0].items()}


def _metric(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else str(value)


def _find_metric(data: Any, feature: str, metric: str) -> str | None:
    """Return the candidate's fairness metric for one sensitive feature, if present."""
    try:
        return _number(data["candidate"][feature]["metrics"][metric])
    except (KeyError, TypeError):
        return None


def _versus(evaluation: dict[str, Any]) -> str:
    differences = evaluation.get("performance", {}).get("difference")
    if isinstance(differences, dict):
        flat = {k: v for k, v in differences.items() if isinstance(v, int | float)}
        return ", ".join(f"{k} {v:+.3f}" for k, v in sorted(flat.items())) or "no change"
    return "no champion to compare with"


def _outcomes(outcomes: list[dict[str, Any]]) -> str:
    return "; ".join(f"{o.get('type')} {o.get('outcome')}" for o in outcomes) or "no actions"


def _verify_text(verify: dict[str, Any]) -> str:
    keys = ("intact", "entries", "head_seq", "checkpoints", "checkpoints_verified")
    return ", ".join(f"{k} {verify[k]}" for k in keys if k in verify)


def run(options: DemoOptions) -> int:
    """Run the demo loop; return the process exit code (0 when every step happened)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return _Demo(options).run()
