"""Recovery codes: a few one-use codes that stand in for a lost authenticator; kept as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.models import RecoveryCode, User, utcnow

COUNT = 8
# 16 characters of a 32-letter alphabet: 80 bits, so a plain SHA-256 is safe to keep.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
LENGTH = 16


def _digest(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def normalise(code: str) -> str:
    """The code as typed, without dashes, spaces or capitals."""
    return "".join(c for c in code.lower() if c.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    """Whether the text has a recovery code's shape (a TOTP code has six digits)."""
    return len(normalise(code)) == LENGTH


def generate(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; the plain codes are returned this once."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, LENGTH, 4)))
        session.add(RecoveryCode(user_id=user.id, code_hash=_digest(raw)))
    return codes


def find_unused(session: Session, user: User, code: str) -> RecoveryCode | None:
    """The user's unused recovery code matching the text, or None."""
    digest = _digest(code)
    rows = session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return next((row for row in rows if hmac.compare_digest(row.code_hash, digest)), None)


def use(row: RecoveryCode) -> None:
    """Spend a recovery code."""
    row.used_at = utcnow()


def remaining(session: Session, user: User) -> int:
    """How many unused recovery codes the user has."""
    return len(
        session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ).all()
    )
