"""Users Management: the Users table and the reference tabs whose IDs admins copy into files."""

from __future__ import annotations

import math
from typing import Any

from flask import render_template, request

from shared.fields import FIELDS
from shared.jobs import list_jobs
from shared.reference import KINDS, list_entities
from shared.users import MAX_PER_PAGE, list_users
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
)
PER_PAGE = 50
RECENT_IMPORTS = 200


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


@bp.get("/users")
@page_auth
def users_management() -> Any:
    """Users Management with its tabs: Users, Roles, Desks, Skill Groups, PBX domains, Imports."""
    tab = request.args.get("tab", "users")
    if tab not in dict(TABS):
        tab = "users"
    if tab == "users":
        context = _users_tab()
    elif tab == "imports":
        context = _imports_tab()
    else:
        context = {"items": list_entities(db(), admin().tenant_id, KINDS[tab])}
    return render_template("users_management.html", tab=tab, tabs=TABS, **context)
