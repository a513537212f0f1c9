"""API tokens (kept only as SHA-256 hashes), and the look-up every login starts with."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session, joinedload

from shared.accounts.access_stamp import NEUTRAL
from shared.accounts.page_sessions import idle_minutes, touch_due, touch_interval
from shared.accounts.passwords import PASSWORDLESS, hash_password, verify_password
from shared.audit import record
from shared.models import MANAGE_USERS, ApiToken, Role, Tenant, User, utcnow
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
    if user is None or user.password_hash == PASSWORDLESS:  # unknown, or no password yet: the same time
        verify_password(settings, _dummy_hash(settings), password)
        return False
    return verify_password(settings, user.password_hash, password)


def token_digest(token: str) -> str:
    """What the database keeps of a token (and what the web's token cache is keyed by)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, settings: Settings, user: User) -> tuple[str, datetime]:
    """A new API token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(hours=settings.token_ttl_hours)
    session.add(
        ApiToken(user_id=user.id, token_hash=token_digest(token), expires_at=expires_at, last_used_at=now)
    )
    return token, expires_at


@dataclass(frozen=True)
class TokenCaller:
    """Who a live bearer token speaks for; the full User is loaded only by views that need it."""

    user_id: int
    tenant_id: int
    is_admin: bool
    # Until when this verdict holds without asking the database again: the token's expiry, or
    # sooner the moment its last use is due to be written (which comes before its idle timeout).
    holds_until: datetime
    touched: bool = False  # its last use was written: the caller commits


# Every API request makes this one query (token, user, role), built once and mapping no objects.
_TOKEN_CALLER = (
    select(
        ApiToken.id,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        ApiToken.created_at,
        User.id.label("user_id"),
        User.tenant_id,
        User.session_timeout_minutes,
        User.locked_at,
        Role.permissions,
    )
    .join(User, User.id == ApiToken.user_id)
    .join(Role, Role.id == User.role_id)
    .where(ApiToken.token_hash == bindparam("digest"))
)


def caller_for_token(
    session: Session, settings: Settings, token: str, digest: str | None = None
) -> TokenCaller | None:
    """The caller a live token speaks for, or None (unknown, expired, idle too long, revoked, locked)."""
    # Through the session's connection: the statement maps no objects, so the ORM's execution
    # path would only add to every API request (about a third of this look-up's time).
    row = session.connection().execute(_TOKEN_CALLER, {"digest": digest or token_digest(token)}).first()
    now = utcnow()
    if row is None or aware(row.expires_at) <= now or row.locked_at is not None:
        return None
    minutes = idle_minutes(row.session_timeout_minutes, settings)
    last_used = aware(row.last_used_at or row.created_at)
    if now - last_used > timedelta(minutes=minutes):
        return None
    touched = touch_due(last_used, minutes)
    if touched:  # the caller's transaction writes it; a token's own last use changes no one's access
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == row.id)
            .values(last_used_at=now)
            .execution_options(**{NEUTRAL: True})
        )
        last_used = now
    holds_until = min(aware(row.expires_at), last_used + touch_interval(minutes))
    is_admin = MANAGE_USERS in (row.permissions or [])
    return TokenCaller(row.user_id, row.tenant_id, is_admin, holds_until, touched)


_TOKEN_ROW = (
    select(ApiToken).options(joinedload(ApiToken.user)).where(ApiToken.token_hash == bindparam("digest"))
)


def revoke_token(session: Session, token: str) -> bool:
    """Delete the token; False when it was not there."""
    row = session.scalar(_TOKEN_ROW, {"digest": token_digest(token)})
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
