"""Several processes appending to one audit chain at once: nothing lost, the chain intact.

On SQLite they queue on the lock file beside the database (:mod:`lineage.sqlite_writers`), as
``warden serve --workers N`` does; on PostgreSQL on the database's own locks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.audit import AuditEntry, append
from governance.audit_verify import verify_store
from governance.checkpoints import attach_signer, detach_signer
from governance.signing import load_or_create_signer
from lineage import session_scope
from lineage.store import is_sqlite

pytestmark = pytest.mark.slow  # two interpreters importing the store: about 3 s

REPO = Path(__file__).resolve().parents[2]
ENTRIES = 60  # per writer, one transaction each
EVERY = 7  # a signed checkpoint every 7 entries: every writer signs some
_WRITER = """
import sys, time
from pathlib import Path
from governance.actors import Actor
from governance.audit import append
from governance.checkpoints import attach_signer
from governance.signing import load_or_create_signer
from lineage import create_store_engine, session_scope

url, key, go, name, count, every = sys.argv[1:7]
engine = create_store_engine(url)
attach_signer(engine, load_or_create_signer(Path(key)), every=int(every))
Path(f"{go}.{name}").touch()
while not Path(go).exists():  # start together, once every writer is ready
    time.sleep(0.01)
for number in range(int(count)):
    with session_scope(engine) as session:
        target = f"{name}:{number}"
        append(session=session, actor=Actor.system(), action="test.write", target=target)
engine.dispose()
"""


def _append(engine: Engine, name: str) -> None:
    for number in range(ENTRIES):
        with session_scope(engine) as session:
            append(
                session=session,
                actor=Actor.system(),
                action="test.write",
                target=f"{name}:{number}",
            )


def test_processes_writing_one_chain_at_once_lose_nothing_and_keep_it_intact(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    key, go = tmp_path / "keys" / "audit.pem", tmp_path / "go"
    signer = load_or_create_signer(key)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [database_url, str(key), str(go)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, *args, name, str(ENTRIES), str(EVERY)], env=env
        )
        for name in ("first", "second")
    ]
    attach_signer(engine, signer, every=EVERY)
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{name}").exists() for name in ("first", "second")):
            assert time.monotonic() < deadline, "the writer processes did not start"
            assert all(writer.poll() is None for writer in writers)
            time.sleep(0.01)
        go.touch()
        threads = [threading.Thread(target=_append, args=(engine, f"here-{n}")) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    finally:
        for writer in writers:
            writer.kill()
        detach_signer(engine)

    report = verify_store(engine=engine, public_key=signer.public_key, every=EVERY)
    assert report.intact, report.problem
    assert report.entries == 4 * ENTRIES
    assert report.checkpoints_verified == 4 * ENTRIES // EVERY
    with session_scope(engine, read_only=True) as session:
        targets = session.exec(select(AuditEntry.target)).all()
    assert sorted(targets) == sorted(
        f"{name}:{number}"
        for name in ("first", "second", "here-1", "here-2")
        for number in range(ENTRIES)
    )
    if is_sqlite(engine):
        assert (tmp_path / "warden.db-writer.lock").exists()
