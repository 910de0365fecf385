"""What someone with raw database access could do to the audit log, for tests that must catch it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["drop_triggers"]

_TABLES = ("governance_audit_entry", "governance_audit_checkpoint")


def drop_triggers(engine: Engine) -> None:
    """Remove the append-only triggers (SQLite or PostgreSQL), as a database owner could."""
    with engine.begin() as connection:
        for table in _TABLES:
            if engine.dialect.name == "sqlite":
                for verb in ("update", "delete"):
                    connection.execute(sa.text(f"DROP TRIGGER {table}_no_{verb}"))
            else:
                connection.execute(sa.text(f"DROP TRIGGER {table}_append_only ON {table}"))
