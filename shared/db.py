"""Engine and session factories; nothing connects until a factory is called."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from shared.settings import Settings


class Base(DeclarativeBase):
    """Declarative base of every model."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the driver we ship)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(settings: Settings | str, pooled: int | None = None, **kwargs: Any) -> Engine:
    """Build the engine for the settings' DATABASE_URL (SQLite tuned for concurrent workers).

    `pooled`: how many connections the pool keeps (one per thread that may query at once);
    beyond them each checkout opens and closes a connection of its own.
    """
    url = normalise_url(settings if isinstance(settings, str) else settings.database_url)
    if pooled is not None and make_url(url).database not in (None, "", ":memory:"):
        kwargs |= {"pool_size": pooled, "max_overflow": 8}  # in-memory SQLite has a pool of one
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted content is overwritten with zeros, so a destroyed secret leaves no bytes in free
            # pages or free space within a page (checkpoint_wal then clears the log).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# A connection back in use within this time was working a moment ago: it is not pinged. A busy
# worker claims hundreds of units a second; pinging each checkout (pool_pre_ping) cost it a fifth.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping for connections that sat idle: one the database dropped meanwhile (a restart, a
    failover) is replaced before a query meets it (SQLAlchemy's pessimistic disconnect handling)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError() from exc  # the pool connects afresh, up to three times
        if not alive:
            raise DisconnectionError()


def checkpoint_wal(engine: Engine) -> bool:
    """On SQLite, copy the write-ahead log into the database file and truncate it to nothing, so the
    old page images that held destroyed secrets leave the disk; True when it completed. Elsewhere a
    no-op (PostgreSQL: docs/operations.md says what VACUUM does).

    Called after the commit that destroyed them; a reader still inside an older snapshot makes it
    incomplete (False), and the next one finishes the work.
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return busy == 0


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory; callers own the transaction (`with factory.begin() as s:`)."""
    return sessionmaker(engine, expire_on_commit=False)
