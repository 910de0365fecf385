"""Governance: identity, roles and permissions, approvals, the audit log and policies."""

from governance.actors import Actor, PrincipalKind
from governance.alerts import AlertRule, RuleChannel
from governance.anchors import Anchor, FileAnchor
from governance.approvals import ApprovalDecision, ApprovalRequest, ApprovalRule
from governance.audit import (
    AuditEntry,
    Outcome,
    act_then_audit,
    append,
    append_in_own_transaction,
)
from governance.budgets import Budget, BudgetAlert
from governance.channels import Channel, SecretBox
from governance.decisions import FindingBatch, PolicyDecision, PromotionBlock
from governance.delivery import Attempt, Delivery, deliver_due, deliver_due_now
from governance.federation import ExternalIdentity, GroupMapping, OidcLogin
from governance.identity import ApiKey, AuthFailure, DashboardSession, IssuedKey, Principal
from governance.identity_generation import IDENTITY_TABLES, IdentityGeneration, read_generation
from governance.incidents import Incident, route_findings
from governance.outbound import AllowEntry
from governance.permissions import Permission
from governance.policies import Policy, PolicyVersion
from governance.roles import ROLE_PERMISSIONS, Role, RoleGrant

__all__ = [
    "IDENTITY_TABLES",
    "ROLE_PERMISSIONS",
    "Actor",
    "AlertRule",
    "AllowEntry",
    "Anchor",
    "ApiKey",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "Attempt",
    "AuditEntry",
    "AuthFailure",
    "Budget",
    "BudgetAlert",
    "Channel",
    "DashboardSession",
    "Delivery",
    "ExternalIdentity",
    "FileAnchor",
    "FindingBatch",
    "GroupMapping",
    "IdentityGeneration",
    "Incident",
    "IssuedKey",
    "OidcLogin",
    "Outcome",
    "Permission",
    "Policy",
    "PolicyDecision",
    "PolicyVersion",
    "Principal",
    "PrincipalKind",
    "PromotionBlock",
    "Role",
    "RoleGrant",
    "RuleChannel",
    "SecretBox",
    "act_then_audit",
    "append",
    "append_in_own_transaction",
    "deliver_due",
    "deliver_due_now",
    "read_generation",
    "route_findings",
]
