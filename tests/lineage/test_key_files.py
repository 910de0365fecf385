"""Key files shared by processes starting at once: one winner, never a half-written key."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from lineage.key_files import create_key_file


def _race(path: Path, racers: int) -> tuple[list[bool], list[bytes]]:
    start = threading.Barrier(racers)
    won: list[bool] = []
    read: list[bytes] = []

    def create(number: int) -> None:
        start.wait()
        won.append(create_key_file(path, bytes([number]) * 32))
        read.append(path.read_bytes())

    threads = [threading.Thread(target=create, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, read


def test_racing_creators_all_read_the_one_complete_key(tmp_path: Path) -> None:
    for trial in range(40):
        path = tmp_path / f"run-{trial}" / "keys" / "shared.key"
        won, read = _race(path, 6)
        assert won.count(True) == 1
        assert len(set(read)) == 1
        assert len(read[0]) == 32
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["shared.key"]  # no drafts left


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "shared.key"
    assert create_key_file(path, b"first")
    assert not create_key_file(path, b"second")
    assert path.read_bytes() == b"first"
