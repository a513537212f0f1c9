"""Who is asking: session cookie (pages, with CSRF) or bearer token (API); rate limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from shared.accounts import access_stamp, page_sessions
from shared.accounts.token_cache import TokenCache
from shared.accounts.tokens import TokenCaller, caller_for_token, token_digest
from shared.errors import DomainError
from shared.models import MANAGE_USERS, User
from web.clients import redis, settings
from web.database import db
from web.page_sessions import ServerSession

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class _LazyAdmin:
    """An admin known by id; truthy, so `if current_admin()` reads as before."""


_LAZY: Any = _LazyAdmin()


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


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
    app.extensions["token_cache"] = TokenCache()
    # Every commit of the app's sessions that changes someone's access renews the access stamp.
    client = app.extensions["redis"]
    access_stamp.watch(app.extensions["db_sessions"], lambda: client)
    # Only the decorated routes (password and code checks) have limits, and their decorator checks
    # them; the extension's check before every request would only cost each API call its time.
    app.before_request_funcs[None].remove(limiter._check_request_limit)


def client_address() -> str | None:
    """The client's address (from X-Forwarded-For only behind TRUSTED_PROXIES)."""
    return request.remote_addr


def login_session(user: User) -> None:
    """Start the user's page session; the session interface gives it a new id."""
    session.clear()
    session["user_id"] = user.id
    session["tenant_id"] = user.tenant_id
    session["idle_minutes"] = page_sessions.idle_minutes(user.session_timeout_minutes, settings())


def logout_session() -> None:
    """End the page session on the server (the row is deleted, the cookie cleared)."""
    session.clear()


def session_id() -> str | None:
    """The id of this request's page session, if it has one."""
    return session.sid if isinstance(session, ServerSession) else None


def session_user() -> User | None:
    """The user logged in with this request's page session, or None."""
    if "session_user" in g:
        return g.session_user
    user_id = session.get("user_id")
    user = db().get(User, user_id) if user_id is not None else None
    if user is not None and (user.tenant_id != session.get("tenant_id") or user.locked_at is not None):
        session.clear()
        user = None
    g.session_user = user
    return user


def is_admin(user: User | None) -> bool:
    """Whether the user may manage users (Users Management and the API)."""
    return user is not None and user.role.grants(MANAGE_USERS)


def current_admin() -> User | None:
    """The admin making this request (bearer token first, else the session cookie).

    For a token the admin is known by id and loaded on first use of admin(): a status read
    needs only the tenant, and every API request pays for this look-up.
    """
    if "admin" not in g:
        _identify()
    return g.admin


def _identify() -> None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        caller = _token_caller(header[7:].strip())
        g.auth_via, g.caller = "token", caller
        g.tenant_id = caller.tenant_id if caller else None
        g.admin_id = caller.user_id if caller else None
        g.admin = _LAZY if caller is not None and caller.is_admin else None
        return
    user = session_user()
    g.auth_via, g.caller = "session", user
    g.tenant_id = user.tenant_id if user else None
    g.admin = user if is_admin(user) else None


def _token_caller(token: str) -> TokenCaller | None:
    """The caller of a bearer token: from this process's cache while the access stamp stands
    (shared.accounts.token_cache), else from the database."""
    cache: TokenCache = current_app.extensions["token_cache"]
    digest = token_digest(token)
    # A view's prefetch may have read the stamp already, in the round trip its own read needed.
    prefetched = "access_stamp" in g
    stamp = g.pop("access_stamp") if prefetched else access_stamp.current(redis())
    caller = cache.get(digest, stamp)
    if caller is not None:
        return caller
    if stamp is None and prefetched and not g.redis_failed:
        stamp = access_stamp.current(redis())  # Redis had none: make one, before the check
    caller = caller_for_token(db(), settings(), token, digest)
    if caller is None:
        return None
    if caller.touched:
        db().commit()  # the token's last use, for its idle timeout (written at most once a minute)
    cache.put(digest, stamp, caller)
    return caller


def forget_token(token: str) -> None:
    """Drop a token from this process's cache (the stamp tells the other processes)."""
    current_app.extensions["token_cache"].drop(token_digest(token))


def api_auth(view: F) -> F:
    """Require an admin for an API view; cookie callers must also send the CSRF token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        admin = current_admin()
        if admin is None:
            if g.caller is not None:
                raise Forbidden("admin_required", "The API is for admins (users.manage).")
            raise Unauthorized("unauthorized", "Send a valid bearer token or log in first.")
        if g.auth_via == "session" and request.method in UNSAFE_METHODS:
            csrf.protect()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def page_auth(view: F) -> F:
    """Require a logged-in admin for a page; others log in, agents go to their account page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = session_user()
        if user is None:
            return redirect(url_for("pages.login", next=request.full_path))
        if not is_admin(user):
            return redirect(url_for("pages.account"))
        g.admin = user
        g.auth_via = "session"
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def account_auth(view: F) -> F:
    """Require any logged-in user of a tenant (the account page)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = session_user()
        if user is None:
            return redirect(url_for("pages.login", next=request.full_path))
        if is_admin(user):
            g.admin = user
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin() -> User:
    """The authenticated admin of this request (inside an api_auth or page_auth view)."""
    if g.admin is _LAZY:
        g.admin = db().get(User, g.admin_id)
    return g.admin


def tenant_id() -> int:
    """The tenant of this request's admin, without loading the admin (cheap reads use it)."""
    return g.tenant_id if g.get("tenant_id") is not None else admin().tenant_id


def login_limit() -> str:
    """The configured rate limit for password checks."""
    return settings().login_rate_limit


def tenant_key() -> str:
    """Rate limits per tenant: one tenant's scripts cannot use up the web for the others."""
    return f"tenant:{tenant_id()}"


def uploads_limit() -> str:
    return f"{settings().uploads_per_minute} per minute"


def import_starts_limit() -> str:
    return f"{settings().import_starts_per_minute} per minute"
