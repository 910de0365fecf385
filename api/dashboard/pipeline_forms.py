"""Pipeline authoring: list the project's retraining pipelines and define a new one.

The form's fields become a :class:`retrain.pipelines.PipelineSpec` handed to the REST handler
(:func:`api.routes.pipelines.define_pipeline`), so the checks and the audit are the API's.
Steps are written as YAML (a list of ``{name, entrypoint}`` or ``{name, command}``), parameters
as ``name = value`` lines. Definitions are not edited in place (runs point at them): define a
new pipeline to change one, as with the API.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import yaml
from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.dashboard.forms import errors_of, form_fields, form_gate, pairs, status_of
from api.dashboard.rendering import _render, router
from api.deps import SessionDep
from api.routes import pipelines as pipeline_routes
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from lineage.errors import InvalidInput, WardenError
from lineage.projects import Project
from retrain.pipelines import PipelineSpec, list_pipelines, list_runs

_FIELDS = ("name", "model_name", "description", "steps", "parameters", "time_limit_seconds")
_ERRORS = {name: name for name in _FIELDS}
_EXAMPLE_STEPS = "- name: train\n  entrypoint: my_project.train:main\n"

Writer = Annotated[Actor, Depends(form_gate(Permission.PIPELINE_WRITE))]
PipelineForm = Annotated[dict[str, str], Depends(form_fields(*_FIELDS))]


def _page(
    request: Request,
    actor: Actor,
    session: Session,
    project: Project,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    pipelines = list_pipelines(session=session, project_id=project.id)
    return _render(
        request,
        "pipelines.html",
        actor,
        session,
        status_code=status_code,
        project=project,
        pipelines=[(p, p.parsed_spec()) for p in pipelines],
        runs=list_runs(session=session, project_id=project.id)[:20],
        names={p.id: p.name for p in pipelines},
        values=values or {"steps": _EXAMPLE_STEPS, "time_limit_seconds": "3600"},
        errors=errors or {},
        saved=saved,
    )


@router.get("/p/{project}/pipelines")
def pipelines_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PIPELINE_READ))],
    project: CurrentProject,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """List pipelines and their recent runs; writers get the form to define one."""
    shown = f"Pipeline {saved} defined." if saved else None
    return _page(request, actor, session, project, saved=shown)


def _spec(form: dict[str, str]) -> dict[str, Any]:
    try:
        steps = yaml.safe_load(form["steps"]) if form["steps"].strip() else []
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidInput(f"the steps are not valid YAML{where}", field="steps") from None
    parameters: dict[str, Any] = {}
    for key, value in pairs(form["parameters"], field="parameters").items():
        try:
            parameters[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            raise InvalidInput(
                f"parameter {key!r}: {value!r} is not a value", field="parameters"
            ) from None

    return {
        "name": form["name"].strip(),
        "model_name": form["model_name"].strip(),
        "description": form["description"],
        "steps": steps,
        "parameters": parameters,
        "time_limit_seconds": form["time_limit_seconds"].strip() or 3600,
    }


@router.post("/p/{project}/pipelines", response_model=None)
def define_pipeline_form(
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: PipelineForm,
) -> Response:
    """Define the pipeline (the REST handler)."""
    try:
        spec = PipelineSpec.model_validate(_spec(form))
        made = pipeline_routes.define_pipeline(
            spec=spec, actor=actor, project=project, session=session
        )
    except (ValidationError, WardenError) as error:
        session.rollback()
        return _page(
            request,
            actor,
            session,
            project,
            values=form,
            errors=errors_of(error, _ERRORS),
            status_code=status_of(error),
        )
    return RedirectResponse(
        f"/p/{quote(project.name)}/pipelines?saved={quote(made.name)}", status_code=303
    )
