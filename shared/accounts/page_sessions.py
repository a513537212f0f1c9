"""Page sessions kept on the server: the cookie holds a random id, the row holds the rest."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from shared.models import WebSession, utcnow
from shared.settings import Settings
from shared.timestamps import aware


@dataclass(frozen=True)
class Loaded:
    data: dict[str, Any]
    user_id: int | None
    idle_minutes: int
    touched_at: datetime


def new_id() -> str:
    """A fresh session id for the cookie (256 random bits)."""
    return secrets.token_urlsafe(32)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def load(session: Session, session_id: str) -> Loaded | None:
    """The live session with this id, or None (unknown, ended, or idle too long)."""
    if not session_id or len(session_id) > 128:
        return None
    row = session.get(WebSession, _key(session_id))
    if row is None or aware(row.expires_at) <= utcnow():
        return None
    return Loaded(dict(row.data or {}), row.user_id, row.idle_minutes, aware(row.touched_at))


def create(
    session: Session, session_id: str, data: dict[str, Any], user_id: int | None, idle_minutes: int
) -> None:
    """Store a new session."""
    now = utcnow()
    session.add(
        WebSession(
            id=_key(session_id),
            user_id=user_id,
            data=data,
            idle_minutes=idle_minutes,
            created_at=now,
            touched_at=now,
            expires_at=now + timedelta(minutes=idle_minutes),
        )
    )


def save(session: Session, session_id: str, data: dict[str, Any] | None, idle_minutes: int) -> None:
    """Record activity (and new data, when given); a session ended meanwhile stays ended."""
    now = utcnow()
    values: dict[str, Any] = {
        "touched_at": now,
        "expires_at": now + timedelta(minutes=idle_minutes),
        "idle_minutes": idle_minutes,
    }
    if data is not None:
        values["data"] = data
    session.execute(update(WebSession).where(WebSession.id == _key(session_id)).values(**values))


def end(session: Session, session_id: str) -> None:
    """End one session (logout)."""
    session.execute(delete(WebSession).where(WebSession.id == _key(session_id)))


def end_for_user(session: Session, user_id: int, keep: str | None = None) -> int:
    """End every session of the user (but `keep`); returns how many."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep:
        query = query.where(WebSession.id != _key(keep))
    return session.execute(query).rowcount or 0


def purge_expired(session: Session) -> int:
    """Delete sessions idle past their timeout; returns how many."""
    return session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow())).rowcount or 0


def idle_minutes(timeout_minutes: int | None, settings: Settings) -> int:
    """How long a session or token may sit idle: the user's own timeout, else the setting."""
    return timeout_minutes or settings.session_timeout_minutes


def touch_interval(minutes: int) -> timedelta:
    """How often activity is written: every minute, more often for timeouts under four minutes."""
    return min(timedelta(minutes=1), timedelta(minutes=minutes) / 4)


def touch_due(touched_at: datetime, minutes: int) -> bool:
    """Whether activity must be written now."""
    return utcnow() - touched_at >= touch_interval(minutes)
