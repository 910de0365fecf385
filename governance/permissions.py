"""Permissions are data: one closed set, checked on every route and every automated action.

Routes declare the permission they need (``Depends(require(Permission.X))`` in ``api``); the
role → permissions table in :mod:`governance.roles` decides who holds it. Values are
``<object>:<verb>`` so logs and the docs matrix read naturally.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Permission"]


class Permission(StrEnum):
    """Everything an actor may be allowed to do in a project (or globally, for admins)."""

    PROJECT_READ = "project:read"
    PROJECT_ADMIN = "project:admin"
    LINEAGE_READ = "lineage:read"
    LINEAGE_WRITE = "lineage:write"
    MODEL_READ = "model:read"
    MODEL_WRITE = "model:write"
    MODEL_PROMOTE = "model:promote"
    DEPLOYMENT_WRITE = "deployment:write"
    INFERENCE_WRITE = "inference:write"
    MONITOR_READ = "monitor:read"
    MONITOR_WRITE = "monitor:write"
    MONITOR_RUN = "monitor:run"
    POLICY_READ = "policy:read"
    POLICY_WRITE = "policy:write"
    PIPELINE_READ = "pipeline:read"
    PIPELINE_WRITE = "pipeline:write"
    PIPELINE_RUN = "pipeline:run"
    APPROVAL_REQUEST = "approval:request"
    APPROVAL_DECIDE = "approval:decide"
    ALERT_READ = "alert:read"
    ALERT_WRITE = "alert:write"
    INCIDENT_ACK = "incident:ack"
    AUDIT_READ = "audit:read"
    REPORT_READ = "report:read"
    TRACE_READ = "trace:read"
    TRACE_WRITE = "trace:write"
