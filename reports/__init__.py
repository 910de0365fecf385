"""Reports: model cards, project audit reports and "as of T", assembled from what Warden recorded.

A report reads every room below it — lineage, monitors, governance and retrain's evaluations,
pipeline runs and promotions — so it is its own layer, between ``api`` and ``retrain``. Nothing
in a report is hand-written prose except a model card's stored fields; what is missing is listed
in the document instead of being filled in. Documents are JSON-ready dicts, rendered by
:mod:`reports.render`; sensitive fields are redacted for readers without ``audit:read``.
"""

from reports.as_of import as_of
from reports.generation import audit_generation, generate_model_card, generate_project_report
from reports.jobs import (
    REPORT_RENDER,
    RenderRequest,
    ReportRenderHandler,
    get_render_job,
    queue_render,
    render_document,
    rendered_file,
    report_key,
)
from reports.model_card import (
    CARD_FIELDS,
    MODEL_CARD_SCHEMA_VERSION,
    ModelCard,
    ModelCardUpdate,
    get_model_card,
    model_card,
    update_model_card,
)
from reports.project_report import project_report
from reports.render import FORMATS, MEDIA_TYPES, Format, render
from reports.sensitive import REDACTED, sees_sensitive

__all__ = [
    "CARD_FIELDS",
    "FORMATS",
    "MEDIA_TYPES",
    "MODEL_CARD_SCHEMA_VERSION",
    "REDACTED",
    "REPORT_RENDER",
    "Format",
    "ModelCard",
    "ModelCardUpdate",
    "RenderRequest",
    "ReportRenderHandler",
    "as_of",
    "audit_generation",
    "generate_model_card",
    "generate_project_report",
    "get_model_card",
    "get_render_job",
    "model_card",
    "project_report",
    "queue_render",
    "render",
    "render_document",
    "rendered_file",
    "report_key",
    "sees_sensitive",
    "update_model_card",
]
