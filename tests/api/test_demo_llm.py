"""The demo's LLM loop pointed at a server it did not start (``--llm-base-url``), steps 7 and 8.

No real LLM can run here, so "any OpenAI-compatible server" is the Banking77 stand-in started by
this test on 127.0.0.1 (a fake, not a model): the demo must treat it as an outside server —
not start its own, name it in its output, bind the deployment to it and send every call there.
The steps run against a real Warden (API, scheduler, worker) on a fresh store, as in
``warden demo``; the tabular steps 2-6 are left out to keep this test short.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.demo.banking import BankingStandIn, find_banking_data, read_queries
from api.demo.context import Demo
from api.demo.llm_loop import step_llm_loop
from api.demo.llm_prompts import step_prompts
from api.demo.options import DemoOptions
from api.demo.people import step_people
from api.demo.processes import prepare_store, shutdown, start_processes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_warden_demo_takes_an_llm_server() -> None:
    shown = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in ("--llm-base-url", "--llm-model", "--llm-api-key-env"):
        assert option in shown.output


@pytest.mark.slow
def test_the_llm_loop_runs_against_a_server_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = read_queries(find_banking_data() / "train.csv.gz") + read_queries(
        find_banking_data() / "test.csv.gz"
    )
    server = BankingStandIn(intents={q.text.lower(): q.intent for q in queries}).start()
    url = server.base_url
    options = DemoOptions(
        root=tmp_path,
        port=_free_port(),
        serve=False,
        step_timeout=300,
        llm_base_url=url,
        llm_model="banking-7b",
    )
    demo = Demo(options)
    try:
        prepare_store(demo)
        start_processes(demo)
        for number, action in (("1", step_people), ("7", step_prompts), ("8", step_llm_loop)):
            demo.api.step = number
            with demo.console.step(number, action.__name__, 8):
                action(demo)
    finally:
        shutdown(demo)
        server.stop()
    out = capsys.readouterr().out
    assert demo.llm is None  # the demo started no stand-in of its own
    assert f"banking-7b at {url}" in out
    assert "STAND-IN" not in out
    llm = demo.facts["llm"]
    assert (llm["stand_in"], llm["model"], llm["answered_after_rollback_by"]) == (
        False,
        "banking-7b",
        "1",
    )
    # Every call of the evaluation runs and of the assistant reached the given server.
    chats = [r for r in server.requests if r.get("model") == "banking-7b"]
    assert len(chats) >= 2 * llm["golden_records"] + 2 * llm["traffic"] + 1
