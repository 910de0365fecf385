"""Step 1: the administrator, the demo project, and three people with their roles and keys."""

from __future__ import annotations

import secrets

from api.demo.client import Person
from api.demo.context import Demo
from api.demo.options import ALSO, PEOPLE, PROJECT

__all__ = ["step_people"]


def step_people(demo: Demo) -> None:
    """Bootstrap the administrator, then create the project and its people through the API."""
    from governance.identity import bootstrap_admin
    from lineage.store import session_scope

    assert demo.engine is not None
    with session_scope(demo.engine) as session:
        issued = bootstrap_admin(session=session, name="admin")
        admin_key = issued.secret
    demo.admin = admin = Person("admin", "admin", "", admin_key)
    demo.api.call(
        "POST",
        "/api/v1/projects",
        admin,
        json={"name": PROJECT, "description": "Income classifier on UCI Adult (demo)"},
    )
    for name, role in PEOPLE.items():
        password = secrets.token_urlsafe(15)
        created = demo.api.call(
            "POST", "/api/v1/principals", admin, json={"name": name, "password": password}
        )
        key = demo.api.call(
            "POST",
            f"/api/v1/principals/{created['id']}/keys",
            admin,
            json={"label": "warden demo"},
        )["key"]
        for granted in (role, *ALSO.get(name, ())):
            demo.api.call(
                "POST",
                f"{demo.base}/grants",
                admin,
                json={"principal_id": created["id"], "role": granted},
            )
        demo.people[name] = Person(name, role, password, key, created["id"])
    demo.summary.people = {
        p.name: {"role": p.role, "password": p.password, "api_key": p.key}
        for p in [admin, *demo.people.values()]
    }
    demo.console.say("      credentials (shown once; the store keeps only hashes):")
    demo.console.say(f"        {'admin':6} administrator   API key {admin.key}")
    for p in demo.people.values():
        demo.console.say(f"        {p.name:6} {p.role:15} password {p.password}  API key {p.key}")
