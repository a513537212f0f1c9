"""Server-rendered pages for admins (session cookie + CSRF); the JSON API does the work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for

from shared.auth import authenticate
from web.database import db
from web.security import limiter, login_limit, login_session, logout_session
from web.services import settings

bp = Blueprint("pages", __name__)


def init_app(app: Flask) -> None:
    """Register the pages."""
    from web.pages import imports, users  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)


@bp.app_template_filter("when")
def when(value: datetime | str | None) -> str:
    """A timestamp (or its ISO text) as admins read it: UTC, to the minute."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _safe_next(target: str | None) -> str:
    # Only same-site paths, so the login form cannot be used to bounce users elsewhere.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("pages.users_management")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login() -> Any:
    """Workspace, username and password; only admins with users.manage may enter."""
    error = None
    form = {"tenant": request.form.get("tenant", ""), "username": request.form.get("username", "")}
    if request.method == "POST":
        session = db()
        user = authenticate(
            session, settings(), form["tenant"], form["username"], request.form.get("password", "")
        )
        if user is None:
            error = "Workspace, username or password is wrong, or your role may not manage users."
        else:
            login_session(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, form=form), (401 if error else 200)


@bp.post("/logout")
def logout() -> Any:
    """End the session."""
    logout_session()
    return redirect(url_for("pages.login"))


@bp.get("/")
def index() -> Any:
    """Home is the Users Management page."""
    return redirect(url_for("pages.users_management"))
