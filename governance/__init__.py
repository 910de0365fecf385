"""Governance: identity, roles and permissions, approvals, the audit log and policies."""

__all__: list[str] = []
