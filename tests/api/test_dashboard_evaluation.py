"""The evaluation pages: the run list (linking to each run's traces), and two runs compared with
the templates' diff.

The runs call the stand-in (``api.demo.llm_stand_in``), a local fake of a hosted LLM.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.dashboard.evaluation_pages import template_diff, template_lines
from api.demo.llm_stand_in import StandInLLM
from governance.actors import Actor
from governance.identity import Principal, create_person
from governance.roles import Role, grant_role
from lineage.projects import Project
from lineage.store import session_scope
from tests.api.evaluation_seed import ANSWERS, seed_evaluation
from tests.api.test_dashboard import HTML, PASSWORD, new_client, sign_in

__all__ = ["new_client"]  # a fixture this module uses


@pytest.fixture
def runs(engine: Engine, make_project: Callable[[str], Project]) -> Iterator[list[uuid.UUID]]:
    project = make_project("acme")
    make_project("other")
    with session_scope(engine) as session:
        system = Actor.system()
        dana = create_person(session=session, actor=system, name="dana", password=PASSWORD)
        vic = create_person(session=session, actor=system, name="vic", password=PASSWORD)
        for who, role in ((dana, Role.DATA_SCIENTIST), (vic, Role.VIEWER)):
            grant_role(
                session=session, actor=system, project_id=project.id, principal_id=who.id, role=role
            )
        dana_id = dana.id
    with StandInLLM(answers=ANSWERS) as stand_in:
        yield seed_evaluation(
            engine, project_id=project.id, author_id=dana_id, base_url=stand_in.base_url
        )


def test_a_viewer_lists_runs_and_compares_two(
    engine: Engine, runs: list[uuid.UUID], new_client: Callable[..., TestClient]
) -> None:
    vic = sign_in(new_client(), "vic")
    # One seeded pair of runs serves the list, the runs' traces and the comparison (CI time).
    _each_run_links_to_its_traces_and_back(engine, runs, vic)
    listing = vic.get("/p/acme/evaluation", headers=HTML)
    assert listing.status_code == 200, listing.text
    assert set(re.findall(r'data-run="([0-9a-f-]{36})"', listing.text)) == {str(r) for r in runs}
    assert 'href="/p/acme/evaluation" aria-current="page"' in listing.text
    page = vic.get(
        "/p/acme/evaluation/compare",
        params=[("runs", str(runs[0])), ("runs", str(runs[1]))],
        headers=HTML,
    )
    assert page.status_code == 200, page.text
    assert re.findall(r'data-record="(\d+)"', page.text) == ["0", "2"]
    assert "It is Paris, on the Seine." in page.text
    assert "<del>Answer briefly: {{question}}</del>" in page.text
    assert "<ins>[system] You are precise; give only the answer.</ins>" in page.text
    assert "0.333" in page.text  # v1's exact_match mean
    assert "pass 100 % of 3" in page.text


def _each_run_links_to_its_traces_and_back(
    engine: Engine,
    runs: list[uuid.UUID],
    vic: TestClient,
) -> None:
    """A run lists its traced calls; the filtered Traces page shows only them, and another
    project's never does; each trace links back to its run."""
    listing = vic.get("/p/acme/evaluation", headers=HTML).text
    first, second = (f"/p/acme/traces?evaluation_run_id={r}" for r in runs)
    assert f'<a href="{first}" aria-label="Traces of support v1">3 calls</a>' in listing
    assert f'href="{second}"' in listing

    page = vic.get(first, headers=HTML)
    assert page.status_code == 200, page.text
    traces = re.findall(r'data-trace="([0-9a-f]{32})"', page.text)
    assert len(traces) == 3  # one per record of the dataset, none of the other run's
    assert "Only the calls of evaluation run" in page.text
    assert 'href="/p/acme/traces?"' in page.text  # the filter removed: every trace
    assert f'name="evaluation_run_id" value="{runs[0]}"' in page.text  # kept by the form
    everything = vic.get("/p/acme/traces", headers=HTML).text
    assert len(re.findall(r'data-trace="', everything)) == 6

    trace = vic.get(f"/p/acme/traces/{traces[0]}", headers=HTML).text
    assert f'href="/p/acme/evaluation#eval-run-{runs[0]}" data-link="evaluation-run"' in trace
    assert f'id="eval-run-{runs[0]}"' in listing

    bad = vic.get("/p/acme/traces?evaluation_run_id=nope", headers=HTML)
    assert bad.status_code == 422
    assert "evaluation_run_id" in bad.text
    # Another project's pages never show acme's run traces: not to an outsider, and not to its
    # own viewer naming acme's run (the project scopes the run filter).
    elsewhere = f"/p/other/traces?evaluation_run_id={runs[0]}"
    assert vic.get(elsewhere, headers=HTML).status_code in (403, 404)
    with session_scope(engine) as session:
        other = session.exec(select(Project).where(Project.name == "other")).one()
        vic_id = session.exec(select(Principal.id).where(Principal.name == "vic")).one()
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=other.id,
            principal_id=vic_id,
            role=Role.VIEWER,
        )
    there = vic.get(elsewhere, headers=HTML)
    assert there.status_code == 200, there.text
    assert "No traces match." in there.text
    assert not re.findall(r'data-trace="', there.text)


def test_comparing_runs_of_another_project_or_one_run_is_refused(
    runs: list[uuid.UUID], new_client: Callable[..., TestClient]
) -> None:
    vic = sign_in(new_client(), "vic")
    one = vic.get("/p/acme/evaluation/compare", params={"runs": str(runs[0])}, headers=HTML)
    assert one.status_code == 422
    stranger = vic.get(
        "/p/acme/evaluation/compare",
        params=[("runs", str(runs[0])), ("runs", str(uuid.uuid4()))],
        headers=HTML,
    )
    assert stranger.status_code == 404


def test_the_template_diff_aligns_lines_and_marks_changes() -> None:
    left = template_lines("Answer briefly: {{q}}", {"temperature": 0.2})
    right = template_lines(
        [{"role": "system", "content": "Be precise."}, {"role": "user", "content": "{{q}}"}],
        {"temperature": 0.2},
    )
    rows = template_diff(left, right)
    assert [(r.kind, r.left, r.right) for r in rows] == [
        ("changed", "Answer briefly: {{q}}", "[system] Be precise."),
        ("added", "", "[user] {{q}}"),
        ("same", "", ""),
        ("same", "temperature: 0.2", "temperature: 0.2"),
    ]
