"""Governance: identity, roles and permissions, approvals, the audit log and policies."""

from governance.actors import Actor, PrincipalKind
from governance.audit import AuditEntry, Outcome, append, append_in_own_transaction
from governance.permissions import Permission

__all__ = [
    "Actor",
    "AuditEntry",
    "Outcome",
    "Permission",
    "PrincipalKind",
    "append",
    "append_in_own_transaction",
]
