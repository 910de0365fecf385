"""Governance: identity, roles and permissions, approvals, the audit log and policies."""

from governance.actors import Actor, PrincipalKind
from governance.permissions import Permission

__all__ = ["Actor", "Permission", "PrincipalKind"]
