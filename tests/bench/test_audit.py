"""Small runs of the audit benchmark: every figure comes out and every entry is accounted for."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from bench.audit import _Answers, build_chain, main, run_batched, run_verify

pytestmark = pytest.mark.slow


def test_batched_appends_and_verification_at_a_tiny_size(tmp_path: Path) -> None:
    batched = run_batched(tmp_path, 300, 100)
    assert batched["batched_entries"] == 300
    assert batched["batched_per_s"] > 0
    assert batched["anchor_inserts_per_s"] > 0
    assert build_chain(tmp_path, 250, 100)["chain_entries"] == 250
    verify = run_verify(tmp_path, 250)  # raises unless the chain verifies intact
    assert verify["checkpoints_verified"] == 2
    assert verify["verify_seconds"] >= 0
    assert verify["hashed_mib"] > 0


def test_a_small_whole_run_through_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--actions", "3", "--writers", "2", "--entries", "200", "--batch", "100"]
    argv += ["--api-processes", "2"]
    assert main([*argv, "--chain", "200", "--seed-batch", "100", "--repeats", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # each answered 200 and left its audit entry, through one process and through two
    assert (figures["api_actions"], figures["api_multi_actions"]) == (6, 6)
    assert (figures["api_processes"], figures["api_multi_processes"]) == (1, 2)
    for key in (
        "api_actions_per_s", "api_p50_ms", "api_p99_ms", "anchor_commits_per_s",
        "api_multi_actions_per_s", "api_multi_p50_ms", "api_multi_p99_ms",
        "batched_per_s", "anchor_inserts_per_s", "verify_per_s",
    ):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["api_multi_server_cpu_ms_per_action"] >= 0  # in clock ticks: 0 on 6 actions
    # uvicorn's parent and its two processes at least
    assert len(figures["rounds"]["api"][0]["api_multi_process_cpu_s"]) >= 3
    assert figures["anchor_hash_seconds"] >= 0
    assert figures["api_client_cpu_ms_per_action"] >= 0  # the writers' share of the machine
    assert len(figures["rounds"]["verify"]) == 1


def test_the_writers_client_reads_answers_split_anyhow_and_refuses_unframed_ones() -> None:
    """Answers on one keep-alive connection come back whole, however the bytes arrive."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        answers = _Answers(ours)
        first = b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"ok":true}'
        second = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"
        theirs.sendall(first[:20])
        sender = threading.Timer(0.05, theirs.sendall, args=(first[20:] + second,))
        sender.start()
        assert answers.next() == (200, b'{"ok":true}')
        assert answers.next() == (404, b"{}")
        sender.join()
        theirs.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        with pytest.raises(ValueError, match="without Content-Length"):
            answers.next()
        theirs.close()
        with pytest.raises(ConnectionError):
            _Answers(ours).next()
