"""Writing edges: the one function every lineage writer uses to link two nodes, idempotently."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from lineage.models import Edge, EdgeKind

__all__ = ["link"]


def link(
    *,
    session: Session,
    project_id: uuid.UUID,
    kind: EdgeKind,
    source_id: uuid.UUID,
    target_id: uuid.UUID,
) -> Edge:
    """Return the edge ``source → target`` of ``kind``, adding it only if it is not there yet.

    Replayed events and repeated registrations call this again with the same ends; returning the
    existing edge is what makes them change nothing.
    """
    existing = session.exec(
        select(Edge).where(
            Edge.project_id == project_id,
            Edge.kind == kind,
            Edge.source_id == source_id,
            Edge.target_id == target_id,
        )
    ).first()
    if existing is not None:
        return existing
    edge = Edge(project_id=project_id, kind=kind, source_id=source_id, target_id=target_id)
    session.add(edge)
    return edge
