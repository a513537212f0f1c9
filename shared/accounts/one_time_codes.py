"""Emailed login codes: six digits, ten minutes, one use; kept hashed, sent by a worker."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.encryption import decrypt, encrypt
from shared.mail import Letter
from shared.models import OneTimeCode, User, utcnow
from shared.settings import Settings
from shared.timestamps import aware

VALID_FOR = timedelta(minutes=10)
DIGITS = 6
# Wrong tries one code survives; then it is spent and a new one must be asked for.
MAX_ATTEMPTS = 5


class Delivery(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


def _digest(settings: Settings, user_id: int, code: str) -> str:
    # Keyed with the secret key and bound to the user: a leaked table reveals no code,
    # and one user's code never matches another's.
    message = f"{user_id}:{code}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def issue(session: Session, settings: Settings, user: User) -> OneTimeCode:
    """A new code for the user (earlier unused ones stop working); the mail task sends it."""
    session.execute(delete(OneTimeCode).where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None)))
    code = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
    row = OneTimeCode(
        user_id=user.id,
        code_hash=_digest(settings, user.id, code),
        # Encrypted so the task message carries only the row's id; wiped once sent.
        code_encrypted=encrypt(settings, code),
        expires_at=utcnow() + VALID_FOR,
        failed_attempts=0,
    )
    session.add(row)
    session.flush()
    return row


def current(session: Session, user: User) -> OneTimeCode | None:
    """The user's newest code that is neither used nor expired."""
    row = session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    )
    if row is None or aware(row.expires_at) <= utcnow():
        return None
    return row


def delivery(row: OneTimeCode) -> Delivery:
    """Whether the code's email is on its way, sent, or could not be sent."""
    if row.sent_at is not None:
        return Delivery.SENT
    if row.send_failed_at is not None:
        return Delivery.FAILED
    return Delivery.SENDING


def matches(session: Session, settings: Settings, user: User, code: str) -> OneTimeCode | None:
    """The user's current code if the text is it; a wrong try counts against the code."""
    row = current(session, user)
    if row is None or row.send_failed_at is not None:
        return None
    if hmac.compare_digest(row.code_hash, _digest(settings, user.id, code.strip())):
        return row
    row.failed_attempts += 1
    if row.failed_attempts >= MAX_ATTEMPTS:
        row.used_at = utcnow()  # spent: guessing one code cannot go on
    return None


def use(row: OneTimeCode) -> None:
    """Spend the code (one login)."""
    row.used_at = utcnow()
    row.code_encrypted = None


def letter(session: Session, settings: Settings, code_id: int, now: datetime | None = None) -> Letter | None:
    """The email to send for a code, or None when it needs none any more (sent, used, expired, gone)."""
    row = session.get(OneTimeCode, code_id)
    now = now or utcnow()
    if row is None or row.code_encrypted is None or row.used_at is not None or aware(row.expires_at) <= now:
        return None
    code = decrypt(settings, row.code_encrypted)
    user = row.user
    minutes = int(VALID_FOR.total_seconds() // 60)
    body = (
        f"Hello {user.first_name or user.username},\n\n"
        f"Your one-time login code for workspace {user.tenant.slug} is:\n\n"
        f"    {code}\n\n"
        f"It is valid for {minutes} minutes and works once. If you did not try to log in,\n"
        "change your password and tell your administrator.\n"
    )
    return Letter(to=user.email, subject="Your login code", body=body)


def mark_sent(session: Session, code_id: int) -> None:
    """The email went out: forget the encrypted copy."""
    row = session.get(OneTimeCode, code_id)
    if row is not None:
        row.sent_at = utcnow()
        row.code_encrypted = None


def mark_failed(session: Session, code_id: int) -> None:
    """The email could not be sent after every retry: the code is void, the user asks for a new one."""
    row = session.get(OneTimeCode, code_id)
    if row is not None and row.sent_at is None:
        row.send_failed_at = utcnow()
        row.code_encrypted = None


def purge_expired(session: Session) -> int:
    """Delete codes past their validity; returns how many."""
    result = session.execute(delete(OneTimeCode).where(OneTimeCode.expires_at <= utcnow()))
    return result.rowcount or 0
