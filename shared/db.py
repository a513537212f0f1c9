"""Engine and session factories; nothing connects until a factory is called."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
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
    return create_engine(url, pool_pre_ping=True, **kwargs)


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
