"""Warden's settings, read from ``WARDEN_*`` environment variables (and a ``.env`` file).

Only the composition root builds a :class:`Settings`; everything below ``api`` receives the
values it needs as arguments, so a test can build an app with its own settings and nothing is
read at import time.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from lineage.storage import ObjectStore
    from monitors.engine import SummaryEngine
    from monitors.table_files import TableLimits

__all__ = ["Settings"]


@cache
def _artifact_store(url: str | None, data_dir: Path) -> ObjectStore:
    """Open a store once: an S3 client holds a connection pool worth reusing."""
    from lineage.storage import open_store

    return open_store(url, data_dir=data_dir)


class Settings(BaseSettings):
    """Configuration of one Warden process (API, scheduler or worker)."""

    model_config = SettingsConfigDict(
        env_prefix="WARDEN_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path(".warden"),
        description="Artifact store: inference logs, baselines, reports, keys, local MLflow.",
    )
    artifact_url: str | None = Field(
        default=None,
        description="Where artifacts live: unset for the data directory, file:///path, or "
        "s3://bucket/prefix (credentials from the AWS_* variables; needs warden[s3]).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file inside the data directory.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; defaults to a SQLite store in the data dir.",
    )
    mlflow_ui_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        max_length=2000,
        description="Base URL of an MLflow UI serving that registry (e.g. http://mlflow:5000); "
        "when set, the dashboard's catalog links each model version there.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes `warden serve` runs on its one port (the kernel spreads the "
        "connections); on SQLite they queue their writes on a lock file beside the database.",
    )
    api_pin_cores: bool = Field(
        default=True,
        description="With several API processes, hold each to a core of its own (Linux): "
        "their threads then hand over the interpreter lock on one core (api/cpu_slots.py).",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        description="Largest request body accepted, after decompression.",
    )
    monitor_engine: Literal["local", "spark", "auto"] = Field(
        default="local",
        description="Which engine summarises monitor windows for drift and prediction drift: "
        "local (streamed in this process), spark (PySpark, the warden[spark] extra) or auto "
        "(Spark from spark_row_threshold rows, and always for spark_deployments).",
    )
    spark_row_threshold: int = Field(
        default=5_000_000,
        ge=1,
        description="Under monitor_engine=auto, windows of at least this many rows use Spark.",
    )
    spark_deployments: list[str] = Field(
        default_factory=list,
        description="Under monitor_engine=auto, deployment names whose windows always use Spark.",
    )
    spark_master: str = Field(
        default="local[2]",
        max_length=500,
        description="Spark master URL for the Spark engine (local[N] runs inside the worker).",
    )
    table_max_rows: int = Field(
        default=2_000_000,
        ge=1,
        description="Most rows an uploaded or reference table (a baseline's) may hold; an "
        "inference upload holds at most 10,000 whatever this says.",
    )
    table_max_columns: int = Field(
        default=1_000, ge=1, description="Most columns an uploaded or reference table may hold."
    )
    table_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Largest decoded size of an uploaded or reference table: judged from a "
        "Parquet footer before decoding, enforced while it streams, and the inflated size of a "
        "gzipped CSV.",
    )
    id_runs_memory_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Memory each API process may keep for de-duplicating request ids (12 bytes "
        "per stored id of each deployment checked); past it, the deployments checked least "
        "recently are dropped and read back from the store when next checked.",
    )
    scheduler_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Scheduler leadership lasts this long without a heartbeat; a standby takes "
        "over at most this long (plus one heartbeat) after the leader dies.",
    )
    scheduler_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often the scheduler renews or tries to take the lease."
    )
    scheduler_sync_seconds: float = Field(
        default=30.0, gt=0, description="How often the scheduler re-reads the monitor table."
    )
    scheduler_misfire: Literal["coalesce", "all", "skip"] = Field(
        default="coalesce",
        description="Slots missed during downtime: one catch-up run, every slot, or none.",
    )
    scheduler_misfire_grace_seconds: float = Field(
        default=60.0, ge=0, description="A slot this late still counts as on time."
    )
    scheduler_max_catch_up: int = Field(
        default=100, ge=1, description="With misfire 'all': run at most this many missed slots."
    )
    worker_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed job is re-queued this long after its last heartbeat.",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a worker renews the lease of its job."
    )
    worker_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How long an idle worker waits before looking again (a job queued in this process,"
            " or on PostgreSQL anywhere, wakes it at once)."
        ),
    )
    worker_retry_delay_seconds: float = Field(
        default=10.0, ge=0, description="Backoff after a failed attempt, times the attempt number."
    )
    worker_max_attempts: int = Field(
        default=3, ge=1, description="Attempts per job before it is marked failed."
    )
    worker_handlers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra or replacement job handlers: job kind -> 'module:function' (JSON).",
    )

    sandbox: Literal["bubblewrap", "none"] = Field(
        default="bubblewrap",
        description="How pipeline steps and evaluation readers (project code) are isolated: "
        "'bubblewrap' (bwrap must be installed; Warden refuses to run project code without it) "
        "or 'none' — DEVELOPMENT ONLY: the code then runs as the worker and can read its keys "
        "and database; a warning is logged every time.",
    )
    sandbox_read_roots: list[Path] = Field(
        default_factory=list,
        description="Folders (JSON list) whose files pipelines may name as training or "
        "held-out data; steps see them read-only. None may contain the data directory.",
    )
    sandbox_network_projects: list[str] = Field(
        default_factory=list,
        description="Projects (names or ids, JSON list) whose steps may use the network; "
        "all others have none.",
    )

    audit_key_path: Path | None = Field(
        default=None,
        description="Ed25519 key signing audit checkpoints (PEM, mode 0600), generated on first "
        "start; defaults to <data_dir>/keys/audit-ed25519.pem.",
    )
    audit_checkpoint_every: int = Field(
        default=100,
        ge=1,
        description="Sign a checkpoint of the audit chain's head every this many entries; "
        "verification treats a longer stretch without one as a break.",
    )
    audit_anchor_path: Path | None = Field(
        default=None,
        description="Append-only JSON-lines file that receives a copy of every audit checkpoint, "
        "outside the database; defaults to audit-anchor.jsonl beside the signing key. Put it "
        "where the database's owner cannot rewrite it (another host's mount, chattr +a).",
    )
    audit_anchor_channels: list[str] = Field(
        default_factory=list,
        description="Alert channels ('project/channel', JSON list) that receive every audit "
        "checkpoint as a signed CloudEvent, so a third party holds a copy too.",
    )
    auth_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed authentications one address may make per window before a 429.",
    )
    auth_failure_window_seconds: int = Field(
        default=60,
        ge=1,
        description="The window over which failed authentications are counted, in seconds.",
    )

    local_passwords: bool = Field(
        default=True,
        description="Whether people may sign in to the dashboard with a Warden password. Turn "
        "it off when everyone signs in through the identity provider: the sign-in page then "
        "shows only the provider, and no principal may be given a password. Bootstrap on an "
        "empty store still works (the first administrator gets an API key, never a password).",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer, exactly as its discovery document names it "
        "(https; plain http only on loopback, for tests). Setting it (with a client id) turns "
        "on dashboard sign-in with the provider.",
    )
    oidc_client_id: str | None = Field(
        default=None, description="The client (application) id Warden has at the provider."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The client secret, best given sealed: 'sealed:<token>' as returned by "
        "POST /api/v1/sealed-secrets (Fernet under the outbound key, like channel secrets).",
    )
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes asked for at sign-in (JSON list); must include 'openid'.",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="The claim carrying the person's groups in the ID token (and a service's "
        "in its access token): a list of strings, or one string.",
    )
    oidc_name_claim: str = Field(
        default="preferred_username",
        description="The claim suggesting a Warden name at first sign-in (then 'email', "
        "then 'sub'). Only a hint: people are recognised by issuer and subject.",
    )
    oidc_api_audience: str | None = Field(
        default=None,
        description="When set, API calls may carry the provider's access tokens (JWT, e.g. "
        "from the client-credentials flow) whose 'aud' is this value; each is mapped to a "
        "service account. Must differ from the client id (ID tokens carry that).",
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="Warden's public callback URL, registered at the provider; defaults to "
        "<this request's origin>/login/oidc/callback.",
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        description="Signature algorithms accepted on tokens (public-key ones only).",
    )
    oidc_leeway_seconds: int = Field(
        default=60, ge=0, le=300, description="Clock skew tolerated on exp and iat (at most 5 min)."
    )
    oidc_jwks_refresh_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A token naming an unknown key refetches the provider's keys at most this "
        "often (key rotation without a restart).",
    )
    oidc_session_seconds: int = Field(
        default=3600,
        ge=60,
        le=8 * 3600,
        description="How long a dashboard session from the provider lasts; groups are "
        "re-read at the next sign-in, so this bounds how long a removed group still counts.",
    )
    oidc_jit: bool = Field(
        default=True,
        description="Create a principal at its first sign-in or token use; when off, only "
        "identities an administrator linked may sign in.",
    )
    oidc_display_name: str = Field(
        default="your organisation's sign-in",
        max_length=80,
        description="Shown on the sign-in button ('Sign in with …').",
    )

    outbound_key_path: Path | None = Field(
        default=None,
        description="Key sealing alert-channel secrets (Fernet, mode 0600), generated on first "
        "use; defaults to <data_dir>/keys/outbound.key. API and workers must share it.",
    )
    outbound_ca_file: Path | None = Field(
        default=None,
        description="Extra CA bundle (PEM) trusted for https webhooks and SMTP TLS.",
    )
    outbound_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Connect/read timeout of one outbound delivery attempt, in seconds.",
    )

    @field_validator("oidc_issuer", "oidc_redirect_url")
    @classmethod
    def _https_or_loopback(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"{value!r} must be an https URL (http only on loopback)")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("the scopes must include 'openid'")
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _public_key_algorithms(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}
        unsafe = sorted(set(value) - allowed - {"ES512", "EdDSA"})
        if unsafe or not value:
            raise ValueError(f"only public-key algorithms may be accepted, not {unsafe}")
        return value

    @model_validator(mode="after")
    def _api_audience_is_not_the_client(self) -> Settings:
        if self.oidc_api_audience and self.oidc_api_audience == self.oidc_client_id:
            raise ValueError(
                "WARDEN_OIDC_API_AUDIENCE must differ from WARDEN_OIDC_CLIENT_ID, or a person's "
                "ID token would pass as an access token: register the API as its own audience"
            )
        return self

    def oidc_enabled(self) -> bool:
        """Return whether sign-in with an OpenID Connect provider is configured."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @field_validator("audit_anchor_channels")
    @classmethod
    def _project_slash_channel(cls, value: list[str]) -> list[str]:
        for text in value:
            project, _, channel = text.partition("/")
            if not project or not channel or "/" in channel:
                raise ValueError(f"{text!r} is not 'project/channel'")
        return value

    def table_limits(self, *, max_rows: int | None = None) -> TableLimits:
        """Return the bounds of a table read into memory (``max_rows`` lowers the row bound)."""
        # Imported here: the monitors package is heavy, and `warden --help` reads this module.
        from monitors.table_files import TableLimits

        rows = self.table_max_rows if max_rows is None else min(max_rows, self.table_max_rows)
        return TableLimits(
            max_rows=rows, max_columns=self.table_max_columns, max_bytes=self.table_max_bytes
        )

    def summary_engine(self) -> SummaryEngine:
        """Return the rule choosing the engine that summarises monitor windows."""
        from monitors.engine import SummaryEngine

        return SummaryEngine(
            mode=self.monitor_engine,
            row_threshold=self.spark_row_threshold,
            deployments=frozenset(self.spark_deployments),
            master=self.spark_master,
        )

    def resolved_audit_key_path(self) -> Path:
        """Return the audit signing key's path, defaulting to ``<data_dir>/keys/``."""
        return self.audit_key_path or self.data_dir / "keys" / "audit-ed25519.pem"

    def resolved_audit_anchor_path(self) -> Path:
        """Return the audit anchor file's path, defaulting to beside the signing key."""
        return self.audit_anchor_path or self.resolved_audit_key_path().parent / (
            "audit-anchor.jsonl"
        )

    def resolved_outbound_key_path(self) -> Path:
        """Return the key sealing channel secrets, defaulting to ``<data_dir>/keys/``."""
        return self.outbound_key_path or self.data_dir / "keys" / "outbound.key"

    def artifact_store(self) -> ObjectStore:
        """Return the artifact store ``artifact_url`` names (one per process and URL)."""
        return _artifact_store(self.artifact_url, self.data_dir)

    def mlflow_artifact_root(self) -> Path | str:
        """Return where experiments Warden creates keep MLflow artifacts: beside Warden's own.

        In the bucket (``<artifact_url>/mlflow-artifacts``; MLflow's S3 support reads the same
        ``AWS_*`` variables) when ``artifact_url`` is ``s3://``, else
        ``<data_dir>/mlflow-artifacts``.
        """
        if self.artifact_url and urlsplit(self.artifact_url).scheme == "s3":
            return f"{self.artifact_url.rstrip('/')}/mlflow-artifacts"
        return self.data_dir / "mlflow-artifacts"

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to ``<data_dir>/warden.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'warden.db').resolve()}"

    def resolved_mlflow_uri(self) -> str:
        """Return the MLflow URI, defaulting to ``<data_dir>/mlflow.db``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"
