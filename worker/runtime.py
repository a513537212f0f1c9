"""What a worker process holds once: its settings, database engine, Redis client and the name of
the worker it belongs to.

Built lazily on first use, never at import, so `import worker` works in any environment.
"""

from __future__ import annotations

import os
import secrets
from functools import cache

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.accounts import access_stamp
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings

_node: str | None = None


def name_node(hostname: str) -> str:
    """Name this worker in its main process, before the pool forks: its processes inherit the name.
    The random part tells a restarted worker (same host name, same pid in a container) from the dead one."""
    global _node
    _node = f"{hostname}/{os.getpid()}/{secrets.token_hex(3)}"
    return _node


def node() -> str | None:
    """The name of the worker this process belongs to (None outside a worker)."""
    return _node


@cache
def settings() -> Settings:
    """The worker's settings, read once from the environment."""
    return Settings.from_env()


@cache
def engine() -> Engine:
    """The process's engine."""
    return make_engine(settings())


@cache
def sessions() -> sessionmaker[Session]:
    """The process's session factory; tasks own their transactions (`with sessions().begin()`).

    A commit that changes someone's access (an undo deleting users, a regeneration ending their
    tokens) renews the access stamp, so the web checks those tokens again.
    """
    factory = make_sessionmaker(engine())
    access_stamp.watch(factory, redis)  # the client is looked up at commit: after_fork replaces it
    return factory


@cache
def redis() -> Redis:
    """The process's Redis client, for progress."""
    return Redis.from_url(settings().redis_url, socket_timeout=5, socket_connect_timeout=2)


def after_fork() -> None:
    """Drop connections inherited from the parent process; a forked child opens its own."""
    if engine.cache_info().currsize:
        engine().dispose(close=False)
    redis.cache_clear()
