"""Encryption at rest of temporary passwords (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

from cryptography.fernet import Fernet

from shared.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    return Fernet(settings.encryption_key.encode())


def encrypt(settings: Settings, plain: str) -> bytes:
    """Encrypt a secret for storage."""
    return _fernet(settings).encrypt(plain.encode())


def decrypt(settings: Settings, token: bytes) -> str:
    """Decrypt a stored secret."""
    return _fernet(settings).decrypt(token).decode()
