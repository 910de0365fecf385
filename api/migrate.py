"""Run Alembic migrations programmatically (``warden migrate``, ``/readyz``, tests).

Each package owns a branch of the revision graph (``lineage``, ``governance``, ``monitors``,
``retrain``), all rooted at the kernel revision, so rooms evolve their schema independently;
"at head" therefore means "at every head".
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "downgrade", "pending_heads", "upgrade"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic config for ``url`` pointing at Warden's revision scripts."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Upgrade the database at ``url`` to ``revision`` (every branch head by default)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision`` (empty by default)."""
    command.downgrade(alembic_config(url), revision)


@functools.cache
def _scripts() -> ScriptDirectory:
    """Warden's revision scripts, read once per process (they do not change while it runs)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def pending_heads(engine: Engine) -> set[str]:
    """Return the head revisions the database has not reached yet (empty when current).

    ``/readyz`` asks on every probe: only the database's recorded heads are read each time.
    """
    script = _scripts()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    # Alembic records only the tips; a head that another branch ``depends_on`` is applied but
    # not recorded, so count everything below the recorded tips as applied.
    applied = {revision.revision for revision in script.iterate_revisions(current, "base")}
    return set(script.get_heads()) - applied
