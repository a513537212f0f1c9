"""Settings, read once from the environment; tests build `Settings(...)` directly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _secret_file(var_dir: Path, name: str, make: Callable[[], str]) -> str:
    """Read a secret kept in var/, creating it once (mode 600) when missing."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


@dataclass(frozen=True)
class Settings:
    """Everything the web, the worker and the CLI need to know about their world."""

    database_url: str = "sqlite:///" + str(PROJECT_ROOT / "var" / "app.db")
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    max_rows: int = 500
    max_upload_bytes: int = 5 * 1024 * 1024
    max_columns: int = 200
    chunk_size: int = 100
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    password_retention_hours: int = 24
    token_ttl_hours: int = 12
    port: int = 8000
    flower_user: str = "admin"
    flower_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    demo_admin_password: str | None = None
    session_cookie_secure: bool = False
    login_rate_limit: str = "30 per minute"
    broker_visibility_timeout: int = 300
    task_queue: str = "imports"
    var_dir: Path = PROJECT_ROOT / "var"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables, generating local secrets once."""
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("VAR_DIR") or PROJECT_ROOT / "var")
        secret_key = env.get("SECRET_KEY") or _secret_file(
            var_dir, "secret_key", lambda: secrets.token_urlsafe(32)
        )
        encryption_key = env.get("ENCRYPTION_KEY") or _secret_file(
            var_dir, "encryption.key", lambda: Fernet.generate_key().decode()
        )
        try:
            Fernet(encryption_key.encode())
        except ValueError:
            raise SettingsError("ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes)") from None
        flower_auth = env.get("FLOWER_BASIC_AUTH") or (
            "admin:" + _secret_file(var_dir, "flower_password", lambda: secrets.token_urlsafe(12))
        )
        if ":" not in flower_auth:
            raise SettingsError("FLOWER_BASIC_AUTH must look like user:password")
        flower_user, flower_password = flower_auth.split(":", 1)
        return cls(
            database_url=env.get("DATABASE_URL") or "sqlite:///" + str(var_dir / "app.db"),
            redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            secret_key=secret_key,
            encryption_key=encryption_key,
            max_rows=_int(env, "MAX_ROWS", 500, 1),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 5 * 1024 * 1024, 1024),
            max_columns=_int(env, "MAX_COLUMNS", 200, 1),
            chunk_size=_int(env, "CHUNK_SIZE", 100, 1),
            argon2_memory_kib=_int(env, "ARGON2_MEMORY_KIB", 19456, 8),
            argon2_time_cost=_int(env, "ARGON2_TIME_COST", 2, 1),
            argon2_parallelism=_int(env, "ARGON2_PARALLELISM", 1, 1),
            password_retention_hours=_int(env, "PASSWORD_RETENTION_HOURS", 24, 1),
            token_ttl_hours=_int(env, "TOKEN_TTL_HOURS", 12, 1),
            port=_int(env, "PORT", 8000, 1),
            flower_user=flower_user,
            flower_password=flower_password,
            demo_admin_password=env.get("DEMO_ADMIN_PASSWORD") or None,
            session_cookie_secure=_bool(env, "SESSION_COOKIE_SECURE", False),
            login_rate_limit=env.get("LOGIN_RATE_LIMIT") or "30 per minute",
            broker_visibility_timeout=_int(env, "BROKER_VISIBILITY_TIMEOUT", 300, 10),
            task_queue=env.get("TASK_QUEUE") or "imports",
            var_dir=var_dir,
        )

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, so a child process (worker, web) agrees with us."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "ENCRYPTION_KEY": self.encryption_key,
            "MAX_ROWS": str(self.max_rows),
            "MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
            "MAX_COLUMNS": str(self.max_columns),
            "CHUNK_SIZE": str(self.chunk_size),
            "ARGON2_MEMORY_KIB": str(self.argon2_memory_kib),
            "ARGON2_TIME_COST": str(self.argon2_time_cost),
            "ARGON2_PARALLELISM": str(self.argon2_parallelism),
            "PASSWORD_RETENTION_HOURS": str(self.password_retention_hours),
            "TOKEN_TTL_HOURS": str(self.token_ttl_hours),
            "PORT": str(self.port),
            "FLOWER_BASIC_AUTH": f"{self.flower_user}:{self.flower_password}",
            "SESSION_COOKIE_SECURE": "true" if self.session_cookie_secure else "false",
            "LOGIN_RATE_LIMIT": self.login_rate_limit,
            "BROKER_VISIBILITY_TIMEOUT": str(self.broker_visibility_timeout),
            "TASK_QUEUE": self.task_queue,
            "VAR_DIR": str(self.var_dir),
        } | ({"DEMO_ADMIN_PASSWORD": self.demo_admin_password} if self.demo_admin_password else {})

    def with_(self, **changes: object) -> Settings:
        """A copy with some values changed (tests, CLI overrides)."""
        return replace(self, **changes)
