"""Server-side page sessions: Flask's session lives in the database, the cookie holds only its id.

Logging out deletes the row, so a copied cookie stops working at once; a password reset
deletes all of the user's rows in the reset's own transaction. A session idle for longer
than the user's timeout (else SESSION_TIMEOUT_MINUTES) is gone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from shared.accounts import page_sessions
from shared.models import utcnow
from web.database import sessions as db_sessions

log = logging.getLogger(__name__)


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session's data, with the id and state it was loaded with."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        sid: str | None = None,
        user_id: int | None = None,
        touched_at: datetime | None = None,
    ) -> None:
        def on_update(_self: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.loaded_user_id = user_id
        self.touched_at = touched_at
        self.modified = False


class DatabaseSessionInterface(SessionInterface):
    """Loads and stores sessions through shared.accounts.page_sessions, in a database session of its own."""

    def __init__(self, default_idle_minutes: int) -> None:
        self.default_idle_minutes = default_idle_minutes

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        """The session named by the cookie, or a new empty one."""
        if "HTTP_COOKIE" not in request.environ:
            return ServerSession()  # API clients with a token send no cookie: skip parsing any
        if request.path.startswith(app.static_url_path or "/static"):
            return ServerSession()  # static files never need the session
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession()
        with db_sessions()() as db:
            loaded = page_sessions.load(db, sid)
        if loaded is None:
            return ServerSession()
        return ServerSession(loaded.data, sid, loaded.user_id, loaded.touched_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what changed; a new id whenever the logged-in user changes (no session fixation)."""
        assert isinstance(session, ServerSession)
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        user_id = session.get("user_id")
        idle = session.get("idle_minutes") or self.default_idle_minutes
        if not session:
            if session.sid:
                with db_sessions().begin() as db:
                    page_sessions.end(db, session.sid)
                response.delete_cookie(name, domain=domain, path=path)
            return
        if session.sid is None or user_id != session.loaded_user_id:
            new_sid = page_sessions.new_id()
            with db_sessions().begin() as db:
                if session.sid:
                    page_sessions.end(db, session.sid)
                page_sessions.create(db, new_sid, dict(session), user_id, idle)
            response.set_cookie(
                name,
                new_sid,
                httponly=self.get_cookie_httponly(app),
                secure=self.get_cookie_secure(app),
                samesite=self.get_cookie_samesite(app),
                domain=domain,
                path=path,
            )
            response.vary.add("Cookie")
            return
        due = session.touched_at is None or page_sessions.touch_due(session.touched_at, idle)
        if session.modified or due:
            with db_sessions().begin() as db:
                page_sessions.save(db, session.sid, dict(session) if session.modified else None, idle)
            session.touched_at = utcnow()


def init_app(app: Flask) -> None:
    """Use the database-backed sessions."""
    app.session_interface = DatabaseSessionInterface(app.config["SETTINGS"].session_timeout_minutes)
