"""API tokens (kept only as SHA-256 hashes), and the look-up every login starts with."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session, joinedload

from shared.audit import record
from shared.models import MANAGE_USERS, ApiToken, Tenant, User, utcnow
from shared.passwords import hash_password, verify_password
from shared.sessions import idle_minutes, touch_due
from shared.settings import Settings
from shared.timestamps import aware

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


def password_matches(settings: Settings, user: User | None, password: str) -> bool:
    """Whether the password is the user's; an unknown user costs the same time and never matches."""
    if user is None:
        verify_password(settings, _dummy_hash(settings), password)
        return False
    return verify_password(settings, user.password_hash, password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, settings: Settings, user: User) -> tuple[str, datetime]:
    """A new API token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(hours=settings.token_ttl_hours)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=expires_at, last_used_at=now))
    return token, expires_at


# One query for the token, its user and the user's role, built once: every API request makes it.
_TOKEN_LOOKUP = (
    select(ApiToken)
    .options(joinedload(ApiToken.user).joinedload(User.role))
    .where(ApiToken.token_hash == bindparam("digest"))
)


def user_for_token(session: Session, settings: Settings, token: str) -> User | None:
    """The admin a live token belongs to, or None (unknown, expired, idle too long, revoked)."""
    row = session.scalar(_TOKEN_LOOKUP, {"digest": _digest(token)})
    if row is None or aware(row.expires_at) <= utcnow():
        return None
    user = row.user
    minutes = idle_minutes(user, settings)
    last_used = aware(row.last_used_at or row.created_at)
    if utcnow() - last_used > timedelta(minutes=minutes):
        return None
    if not user.role.grants(MANAGE_USERS) or user.locked_at is not None:
        return None
    if touch_due(last_used, minutes):
        row.last_used_at = utcnow()  # the caller's transaction writes it; a read-only view may not
    return user


def revoke_token(session: Session, token: str) -> bool:
    """Delete the token; False when it was not there."""
    row = session.scalar(_TOKEN_LOOKUP, {"digest": _digest(token)})
    if row is None:
        return False
    record(session, row.user.tenant_id, row.user_id, "token.revoked", str(row.user_id))
    session.delete(row)
    return True


def revoke_user_tokens(session: Session, user_id: int) -> int:
    """Delete every token of the user; returns how many."""
    return session.execute(delete(ApiToken).where(ApiToken.user_id == user_id)).rowcount or 0


def purge_expired_tokens(session: Session) -> int:
    """Delete expired tokens; returns how many."""
    result = session.execute(delete(ApiToken).where(ApiToken.expires_at <= utcnow()))
    return result.rowcount or 0
