"""The suite's databases: PostgreSQL where one answers, and the project's migrations."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from shared.db import normalise_url
from shared.settings import PROJECT_ROOT

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def postgres_unreachable() -> str | None:
    """Why no PostgreSQL answers at TEST_POSTGRES_URL, or None when one does."""
    try:
        eng = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return f"no PostgreSQL answers at TEST_POSTGRES_URL={POSTGRES_URL} ({type(exc).__name__})"


def migrate(url: str) -> None:
    """Bring a database to the newest schema with the project's Alembic chain."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
