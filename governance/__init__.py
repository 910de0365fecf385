"""Governance: identity, roles and permissions, approvals, the audit log and policies."""

from governance.actors import Actor, PrincipalKind
from governance.approvals import ApprovalDecision, ApprovalRequest, ApprovalRule
from governance.audit import AuditEntry, Outcome, append, append_in_own_transaction
from governance.identity import ApiKey, AuthFailure, IssuedKey, Principal
from governance.permissions import Permission
from governance.roles import ROLE_PERMISSIONS, Role, RoleGrant

__all__ = [
    "ROLE_PERMISSIONS",
    "Actor",
    "ApiKey",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "AuditEntry",
    "AuthFailure",
    "IssuedKey",
    "Outcome",
    "Permission",
    "Principal",
    "PrincipalKind",
    "Role",
    "RoleGrant",
    "append",
    "append_in_own_transaction",
]
