"""Server-rendered pages (session cookie + CSRF): login and account for everyone, the rest for admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, redirect, url_for
from markupsafe import Markup, escape

from shared.timestamps import aware
from web.security import is_admin, session_user

bp = Blueprint("pages", __name__)


def init_app(app: Flask) -> None:
    """Register the pages."""
    from web.pages import account, imports, invitation, login, users  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)


@bp.app_template_filter("when")
def when(value: datetime | str | None) -> str:
    """A timestamp (or its ISO text) as admins read it: UTC, to the minute."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("breakable")
def breakable(value: str) -> Markup:
    """Text that may wrap after each @ and . (emails, usernames), so a narrow column breaks it there."""
    escaped = str(escape(value))  # escaped first: only the <wbr> is markup
    return Markup(escaped.replace("@", "@<wbr>").replace(".", ".<wbr>"))


@bp.get("/")
def index() -> Any:
    """Home: Users Management for admins, the account page for everyone else."""
    user = session_user()
    if user is None:
        return redirect(url_for("pages.login"))
    return redirect(url_for("pages.users_management") if is_admin(user) else url_for("pages.account"))
