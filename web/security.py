"""Who is asking: session cookie (pages, with CSRF) or bearer token (API); rate limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, g, redirect, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from shared.auth import user_for_token
from shared.errors import DomainError
from shared.models import MANAGE_USERS, User
from web.database import db
from web.services import settings

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Unauthorized(DomainError):
    status = 401


def init_app(app: Flask) -> None:
    """CSRF for forms and cookie-authenticated API calls; Redis-backed rate limits."""
    cfg = app.config["SETTINGS"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.session_cookie_secure,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        RATELIMIT_STORAGE_URI=cfg.redis_url,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    csrf.init_app(app)
    limiter.init_app(app)


def login_session(user: User) -> None:
    """Start a browser session for the admin."""
    session.clear()
    session["user_id"] = user.id
    session["tenant_id"] = user.tenant_id
    session.permanent = True


def logout_session() -> None:
    """End the browser session."""
    session.clear()


def _session_user() -> User | None:
    user_id = session.get("user_id")
    if user_id is None:
        return None
    user = db().get(User, user_id)
    if user is None or user.tenant_id != session.get("tenant_id") or not user.role.grants(MANAGE_USERS):
        session.clear()
        return None
    return user


def current_admin() -> User | None:
    """The admin making this request (bearer token first, else the session cookie)."""
    if "admin" in g:
        return g.admin
    header = request.headers.get("Authorization", "")
    user: User | None
    if header.lower().startswith("bearer "):
        user = user_for_token(db(), header[7:].strip())
        g.auth_via = "token"
    else:
        user = _session_user()
        g.auth_via = "session"
    g.admin = user
    return user


def api_auth(view: F) -> F:
    """Require an admin for an API view; cookie callers must also send the CSRF token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        admin = current_admin()
        if admin is None:
            raise Unauthorized("unauthorized", "Send a valid bearer token or log in first.")
        if g.auth_via == "session" and request.method in UNSAFE_METHODS:
            csrf.protect()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def page_auth(view: F) -> F:
    """Require a logged-in admin for a page; others go to the login page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _session_user() is None:
            return redirect(url_for("pages.login", next=request.full_path))
        g.admin = _session_user()
        g.auth_via = "session"
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin() -> User:
    """The authenticated admin of this request (inside an api_auth or page_auth view)."""
    return g.admin


def login_limit() -> str:
    """The configured rate limit for password checks."""
    return settings().login_rate_limit
