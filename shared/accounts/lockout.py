"""Lock after N consecutive failed logins, counted in the database; an admin unlocks."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from shared.audit import record
from shared.models import User, utcnow
from shared.settings import Settings


class Failure(StrEnum):
    PASSWORD = "password"
    CODE = "code"


def is_locked(user: User) -> bool:
    """Whether the account is locked."""
    return user.locked_at is not None


def threshold(user: User, settings: Settings, failure: Failure) -> int | None:
    """Failures that lock the account: the user's setting; wrong codes also lock users without one."""
    if user.lock_after_failed_logins:
        return user.lock_after_failed_logins
    # A wrong code comes after the right password, so this cannot lock strangers out.
    return settings.lock_after_failed_codes if failure is Failure.CODE else None


def count_failure(
    session: Session, settings: Settings, user: User, failure: Failure, address: str | None
) -> None:
    """One more consecutive failure; locks the account when it reaches the threshold."""
    user.failed_logins = (user.failed_logins or 0) + 1
    record(
        session, user.tenant_id, user.id, "login.failed", str(user.id),
        {"username": user.username, "reason": failure.value, "address": address},
    )  # fmt: skip
    limit = threshold(user, settings, failure)
    if limit is not None and user.failed_logins >= limit and user.locked_at is None:
        user.locked_at = utcnow()
        record(
            session, user.tenant_id, user.id, "account.locked", str(user.id),
            {"username": user.username, "failed_logins": user.failed_logins},
        )  # fmt: skip


def clear_failures(user: User) -> None:
    """A complete login: the count starts again."""
    user.failed_logins = 0


def unlock(session: Session, user: User, actor_id: int | None) -> bool:
    """Unlock the account and reset its count; False when it was not locked."""
    was_locked = user.locked_at is not None
    user.locked_at = None
    user.failed_logins = 0
    if was_locked:
        record(
            session, user.tenant_id, actor_id, "account.unlocked", str(user.id), {"username": user.username}
        )
    return was_locked
