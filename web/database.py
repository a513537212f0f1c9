"""One database session per request, closed on teardown; views commit what they change."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.db import checkpoint_wal, make_engine, make_sessionmaker

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Build the engine for the app's settings and close sessions after each request."""
    settings = app.config["SETTINGS"]
    # The pool keeps a connection for each of gunicorn's threads (WEB_THREADS): with SQLAlchemy's
    # default of five, every request beyond the fifth at once opened and closed a connection of its
    # own (SQLite's PRAGMAs, or a PostgreSQL backend).
    engine = make_engine(settings, pooled=settings.web_threads)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)


def sessions() -> sessionmaker[Session]:
    """The app's session factory."""
    return current_app.extensions["db_sessions"]


def clear_destroyed() -> None:
    """After a commit that destroyed secrets: on SQLite, truncate the write-ahead log that still holds
    them (shared.db.checkpoint_wal); the purge task finishes what a busy reader left."""
    checkpoint_wal(current_app.extensions["db_engine"])


def db() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = sessions()()
    return g.db


def close_db() -> None:
    """Close the request's session now (before a long streaming answer)."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.close()
    except SQLAlchemyError as exc:  # a connection lost in an outage: the answer is already made
        log.warning("session close failed error=%s", type(exc).__name__)


def _close_session(_exc: BaseException | None) -> None:
    close_db()
