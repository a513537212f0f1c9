"""Temporary passwords: generated with `secrets`, stored only as argon2id hashes."""

from __future__ import annotations

import secrets
import string
import time
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shared.metrics import HASH_SECONDS
from shared.settings import Settings

# Letters, digits and a few symbols without look-alikes (no O/0, l/1/I, quotes or spaces).
ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "O0oIl1") + "#%+=?!*-"
# A password hash of an account that has no password (invited, not accepted yet): argon2 never verifies
# it, so no password opens the account.
PASSWORDLESS = "!invited"
PASSWORD_LENGTH = 12
DIGITS_LENGTH = 10


def generate_password(digits_only: bool = False) -> str:
    """A fresh temporary password: 12 mixed characters, or 10 digits for keypads."""
    if digits_only:
        return "".join(secrets.choice(string.digits) for _ in range(DIGITS_LENGTH))
    while True:
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_LENGTH))
        # Every class present, so the password passes any usual complexity rule.
        if (
            candidate[0].isalnum()  # a leading = + - would be neutralised in success.csv
            and any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate


def hasher(settings: Settings) -> PasswordHasher:
    """The argon2id hasher with the configured cost."""
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    # Built once per cost (it holds no state between hashes): a chunk hashes every row's password.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def hash_password(settings: Settings, password: str) -> str:
    """Argon2id hash of a password."""
    started = time.perf_counter()
    hashed = hasher(settings).hash(password)
    HASH_SECONDS.observe(time.perf_counter() - started)
    return hashed


def verify_password(settings: Settings, password_hash: str, password: str) -> bool:
    """Whether the password matches the hash (False for any malformed hash)."""
    try:
        return hasher(settings).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
