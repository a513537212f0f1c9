"""Admin authentication: password check and API tokens (kept only as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shared.models import MANAGE_USERS, ApiToken, Tenant, User, utcnow
from shared.passwords import hash_password, verify_password
from shared.settings import Settings

# Verified against when the user is unknown, so a wrong username costs the same time.
_DUMMY_HASH: dict[tuple[int, int, int], str] = {}


def _dummy_hash(settings: Settings) -> str:
    key = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hash_password(settings, secrets.token_urlsafe(16))
    return _DUMMY_HASH[key]


def find_user(session: Session, tenant_slug: str, username: str) -> User | None:
    """The user named in the workspace, or None."""
    return session.scalar(
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            Tenant.slug == tenant_slug.strip().lower(), func.lower(User.username) == username.strip().lower()
        )
    )


def authenticate(
    session: Session, settings: Settings, tenant_slug: str, username: str, password: str
) -> User | None:
    """The admin whose credentials these are, or None (bad credentials or no users.manage)."""
    user = find_user(session, tenant_slug, username)
    if user is None:
        verify_password(settings, _dummy_hash(settings), password)
        return None
    if not verify_password(settings, user.password_hash, password):
        return None
    if not user.role.grants(MANAGE_USERS):
        return None
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, settings: Settings, user: User) -> tuple[str, datetime]:
    """A new API token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(hours=settings.token_ttl_hours)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=expires_at))
    return token, expires_at


def user_for_token(session: Session, token: str) -> User | None:
    """The admin a live token belongs to, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or _aware(row.expires_at) <= utcnow():
        return None
    user = row.user
    return user if user.role.grants(MANAGE_USERS) else None


def purge_expired_tokens(session: Session) -> int:
    """Delete expired tokens; returns how many."""
    result = session.execute(delete(ApiToken).where(ApiToken.expires_at <= utcnow()))
    return result.rowcount or 0


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
