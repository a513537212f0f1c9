"""Per-process database access for tasks, built lazily from the worker's settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings


def settings() -> Settings:
    """The worker's settings (read once from the environment)."""
    from worker.app import settings as current

    return current


@lru_cache(maxsize=1)
def engine() -> Engine:
    """The process's engine."""
    return make_engine(settings())


def sessions() -> sessionmaker[Session]:
    """The process's session factory."""
    return make_sessionmaker(engine())


def dispose_engine() -> None:
    """Drop connections inherited from a parent process (after fork)."""
    if engine.cache_info().currsize:
        engine().dispose(close=False)
