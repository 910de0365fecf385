"""Lineage: the store kernel and the provenance of data, models and deployments."""

from lineage.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    SeparationOfDuties,
    Unauthenticated,
    Unavailable,
    WardenError,
)
from lineage.projects import Project, create_project, get_project, list_projects
from lineage.store import create_store_engine, is_sqlite, session_scope
from lineage.tables import NAMING_CONVENTION, AwareDateTime, Record, new_id, utcnow

__all__ = [
    "NAMING_CONVENTION",
    "AwareDateTime",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Project",
    "RateLimited",
    "Record",
    "SeparationOfDuties",
    "Unauthenticated",
    "Unavailable",
    "WardenError",
    "create_project",
    "create_store_engine",
    "get_project",
    "is_sqlite",
    "list_projects",
    "new_id",
    "session_scope",
    "utcnow",
]
