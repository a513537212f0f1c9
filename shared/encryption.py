"""Encryption at rest of temporary passwords (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet

from shared.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    return _fernet_for(settings.encryption_key)


@lru_cache(maxsize=4)
def _fernet_for(key: str) -> Fernet:
    # Built once per key: a chunk encrypts every one of its temporary passwords.
    return Fernet(key.encode())


def encrypt(settings: Settings, plain: str) -> bytes:
    """Encrypt a secret for storage."""
    return _fernet(settings).encrypt(plain.encode())


def decrypt(settings: Settings, token: bytes) -> str:
    """Decrypt a stored secret."""
    return _fernet(settings).decrypt(token).decode()
