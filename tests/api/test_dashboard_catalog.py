"""The catalog in the dashboard: MLflow's aliases on each version, links into the MLflow UI.

Real MLflow (the app's local store): two tiny models are logged and registered, the
``champion`` and ``challenger`` aliases set as promotion and evaluation set them.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from api.settings import Settings
from governance.actors import Actor
from governance.identity import create_person
from governance.roles import Role, grant_role
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project, create_project
from lineage.store import session_scope
from retrain.mlflow_registry import CHALLENGER, CHAMPION, Registry
from tests.api.test_dashboard import HTML, PASSWORD, sign_in
from tests.api.test_going_live import _train


def _acme_with_viewer_vic(session: Session) -> Project:
    """Project acme, and vic who may view it."""
    project = create_project(session=session, name="acme")
    vic = create_person(session=session, actor=Actor.system(), name="vic", password=PASSWORD)
    grant_role(
        session=session,
        actor=Actor.system(),
        project_id=project.id,
        principal_id=vic.id,
        role=Role.VIEWER,
    )
    return project


def _catalog(engine: Engine, settings: Settings) -> None:
    """Project acme with income v1 (champion) and v2 (challenger) in MLflow and in lineage."""
    with session_scope(engine) as session:
        project = _acme_with_viewer_vic(session)
        for flip in (False, True):
            version, sha = _train(settings, flip)
            register_model_version(
                session=session,
                project_id=project.id,
                name="income",
                spec=ModelVersionCreate(
                    version=version, artifact_uri=f"models:/income/{version}", artifact_sha256=sha
                ),
            )
    registry = Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
    )
    registry.set_alias("income", CHAMPION, "1")
    registry.set_alias("income", CHALLENGER, "2")


@pytest.mark.slow
def test_the_catalog_shows_mlflow_aliases_and_links_into_the_mlflow_ui(
    settings: Settings, engine: Engine
) -> None:
    _catalog(engine, settings)
    linked = settings.model_copy(update={"mlflow_ui_url": "http://mlflow.internal:5000/"})
    with TestClient(create_app(linked, engine=engine)) as client:
        page = sign_in(client, "vic").get("/p/acme/models/income", headers=HTML)
        assert page.status_code == 200
        cells = page.text.split('<th scope="row">MLflow aliases</th>')[1].split("</tr>")[0]
        first, second = cells.split("</td>")[:2]
        assert '<span class="badge alias">@champion</span>' in first
        assert '<span class="badge alias">@challenger</span>' in second
        assert 'href="http://mlflow.internal:5000/#/models/income/versions/2"' in second
        version = client.get("/p/acme/models/income/versions/1", headers=HTML)
        assert "@champion" in version.text
        assert "@challenger" not in version.text
        assert "Open in MLflow" in version.text
    with TestClient(create_app(settings, engine=engine)) as client:
        page = sign_in(client, "vic").get("/p/acme/models/income", headers=HTML)
        assert "@champion" in page.text
        assert "MLflow ↗" not in page.text  # no UI configured: no links


def test_a_version_outside_mlflow_has_no_aliases_and_the_page_still_answers(
    client: TestClient, settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        project = _acme_with_viewer_vic(session)
        register_model_version(
            session=session,
            project_id=project.id,
            name="vendor-score",
            spec=ModelVersionCreate(version="1", external=True),
        )
    page = sign_in(client, "vic").get("/p/acme/models/vendor-score", headers=HTML)
    assert page.status_code == 200
    assert "@champion" not in page.text
    assert "not shown" not in page.text


def test_a_model_with_many_versions_pages_its_comparison_and_the_overview_counts_them(
    client: TestClient, engine: Engine
) -> None:
    """25 versions: the overview counts them and names the newest from one grouped query; the
    model page compares the newest 20 (oldest on the left) and links to the 5 older ones."""
    with session_scope(engine) as session:
        project = _acme_with_viewer_vic(session)
        for number in range(1, 26):
            register_model_version(
                session=session,
                project_id=project.id,
                name="vendor-score",
                spec=ModelVersionCreate(version=str(number), external=True),
            )
    signed = sign_in(client, "vic")
    overview = signed.get("/p/acme", headers=HTML)
    assert overview.status_code == 200
    row = overview.text.split('href="/p/acme/models/vendor-score">vendor-score</a>')[1]
    assert row.split("</tr>")[0] == "</td><td>25</td><td>v25</td>"

    def shown(page: str) -> list[str]:
        head = page.split('<table class="compare">')[1].split("</thead>")[0]
        return re.findall(r">v(\d+)</a></th>", head)

    newest = signed.get("/p/acme/models/vendor-score", headers=HTML)
    assert shown(newest.text) == [str(n) for n in range(6, 26)]
    assert "Newest versions" not in newest.text
    older = re.search(r'href="([^"]+)" rel="next">Older versions', newest.text)
    assert older is not None
    rest = signed.get(html.unescape(older.group(1)), headers=HTML)
    assert rest.status_code == 200
    assert shown(rest.text) == ["1", "2", "3", "4", "5"]
    assert "Newest versions" in rest.text
    assert "Older versions" not in rest.text
    offered = signed.get("/p/acme/reports", headers=HTML).text
    names = re.findall(r'<option value="[0-9a-f-]{36}">vendor-score v(\d+)</option>', offered)
    assert names == [str(n) for n in range(25, 0, -1)]  # newest first
