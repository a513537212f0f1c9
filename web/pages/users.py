"""Users Management: the Users table and the reference tabs whose IDs admins copy into files."""

from __future__ import annotations

import math
from typing import Any

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from shared.accounts.auth_types import CONCRETE, LABELS, AuthType, effective_auth_type
from shared.accounts.invitations import states_of
from shared.audit import list_events
from shared.dialer.reference import KINDS, list_entities, set_role_auth_default
from shared.dialer.users import MAX_PER_PAGE, list_users
from shared.imports.jobs import list_jobs
from shared.mapping.fields import FIELDS
from shared.models import User
from web.database import db
from web.pages import bp
from web.security import admin, page_auth

TABS = (
    ("users", "Users"),
    ("roles", "Roles"),
    ("desks", "Desks"),
    ("skill-groups", "Skill Groups"),
    ("pbx-domains", "PBX domains"),
    ("imports", "Imports"),
    ("log", "Log"),
)
LOG_FILTERS = (("", "All events"), ("login", "Logins"), ("account", "Account changes"), ("token", "Tokens"))
PER_PAGE = 50
RECENT_IMPORTS = 200
RECENT_EVENTS = 200
ROLE_CHOICES = (AuthType.DEFAULT, *CONCRETE)


def _positive_arg(name: str, default: int, upper: int) -> int:
    raw = request.args.get(name, "")
    return min(int(raw), upper) if raw.isdigit() and int(raw) >= 1 else default


def _users_tab() -> dict[str, Any]:
    q = request.args.get("q", "").strip()
    import_id = request.args.get("import_id", "").strip()
    per_page = _positive_arg("per_page", PER_PAGE, MAX_PER_PAGE)
    page_no = _positive_arg("page", 1, 1_000_000)
    page = list_users(
        db(), admin().tenant_id, page=page_no, per_page=per_page, q=q or None, import_id=import_id or None
    )
    pages = max(1, math.ceil(page.total / per_page))
    if page_no > pages:  # past the end (e.g. after a narrower search): show the last page
        page_no = pages
        page = list_users(
            db(), admin().tenant_id, page=page_no, per_page=per_page, q=q or None, import_id=import_id or None
        )
    return {
        "fields": FIELDS,
        "users": page.items,
        "invitations": states_of(db(), [user.id for user in page.items]),  # one query for the page
        "total": page.total,
        "page": page_no,
        "pages": pages,
        "per_page": per_page,
        "per_page_arg": None if per_page == PER_PAGE else per_page,
        "q": q,
        "import_id": import_id,
    }


def _imports_tab() -> dict[str, Any]:
    return {"jobs": list_jobs(db(), admin().tenant_id, limit=RECENT_IMPORTS)}


def _log_tab() -> dict[str, Any]:
    prefix = request.args.get("filter", "")
    if prefix not in dict(LOG_FILTERS):
        prefix = ""
    events = list_events(db(), admin().tenant_id, prefix=prefix or None, limit=RECENT_EVENTS)
    ids = {event.actor_id for event in events if event.actor_id is not None}
    rows = db().execute(select(User.id, User.username).where(User.id.in_(ids)))
    actors = {row.id: row.username for row in rows}
    return {"events": events, "actors": actors, "log_filter": prefix, "log_filters": LOG_FILTERS}


@bp.get("/users")
@page_auth
def users_management() -> Any:
    """Users Management with its tabs: Users, Roles, Desks, Skill Groups, PBX domains, Imports, Log."""
    tab = request.args.get("tab", "users")
    if tab not in dict(TABS):
        tab = "users"
    if tab == "users":
        context = _users_tab()
    elif tab == "imports":
        context = _imports_tab()
    elif tab == "log":
        context = _log_tab()
    else:
        context = {"items": list_entities(db(), admin().tenant_id, KINDS[tab])}
    return render_template(
        "users_management.html", tab=tab, tabs=TABS, auth_labels=LABELS, auth_choices=ROLE_CHOICES,
        effective_auth_type=effective_auth_type, saved=request.args.get("saved"), **context,
    )  # fmt: skip


@bp.post("/users/roles/<int:role_id>/auth-default")
@page_auth
def role_auth_default(role_id: int) -> Any:
    """The Roles tab's Save: a role's authentication default."""
    set_role_auth_default(db(), admin().tenant_id, admin().id, role_id, request.form.get("auth_default"))
    db().commit()
    return redirect(url_for("pages.users_management", tab="roles", saved=role_id))
