"""Open the store for one process: its engine, with the audit checkpoint signer attached.

Every process that appends to the audit log (API, scheduler, worker, CLI commands, the demo)
opens its engine here, so checkpoints fall on the configured schedule whichever process writes
the entry that reaches it, and each is appended to the anchor outside the database.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from api.settings import Settings
from governance.anchors import ChannelRef, FileAnchor
from governance.checkpoints import attach_signer
from governance.signing import Signer, load_or_create_signer
from lineage import create_store_engine

__all__ = ["attach_audit_signer", "open_store"]


def attach_audit_signer(engine: Engine, settings: Settings) -> Signer:
    """Load (or create, on first start) the checkpoint key and attach it to ``engine``.

    Attaching twice to the same engine replaces the first attachment, so callers need not
    know whether someone did it before them.
    """
    signer = load_or_create_signer(settings.resolved_audit_key_path())
    attach_signer(
        engine,
        signer,
        every=settings.audit_checkpoint_every,
        anchor=FileAnchor(settings.resolved_audit_anchor_path()),
        announce_to=tuple(ChannelRef.parse(text) for text in settings.audit_anchor_channels),
    )
    return signer


def open_store(settings: Settings) -> Engine:
    """Return the engine of the configured database, signing audit checkpoints."""
    engine = create_store_engine(settings.resolved_database_url())
    attach_audit_signer(engine, settings)
    return engine
