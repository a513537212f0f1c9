"""Settings, read once from the environment; tests build `Settings(...)` directly.

Reading settings never writes: the local secrets of a machine without them set are generated
by the commands that run the service (`make run`), through ensure_local_secrets.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


class _Reader:
    """Reads variables strictly, collecting every problem so one error names them all."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def int(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {value}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def smtp_url(self, name: str, default: str) -> str:
        """smtp:// or smtps:// with a host (the value is never echoed: it may hold a password)."""
        raw = self.env.get(name) or default
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            self.problems.append(f"{name} has a port that is not a number")
            return default
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname or (port is not None and port < 1):
            self.problems.append(f"{name} must look like smtp://[user:password@]host:port (or smtps://)")
            return default
        return raw

    def secret(self, name: str, var_dir: Path, filename: str) -> str:
        """The variable, else the file `make run` generated into VAR_DIR; never generated here."""
        if self.env.get(name):
            return self.env[name]
        path = var_dir / filename
        if path.is_file():
            return path.read_text().strip()
        self.problems.append(
            f"{name} is not set and {path} does not exist: set {name}, or run `make run` once to generate it"
        )
        return ""


# What `make run` generates into VAR_DIR, once, for a machine without the variables set.
LOCAL_SECRETS: dict[str, Callable[[], str]] = {
    "secret_key": lambda: secrets.token_urlsafe(32),
    "encryption.key": lambda: Fernet.generate_key().decode(),
    "flower_password": lambda: secrets.token_urlsafe(12),
}


def ensure_local_secrets(var_dir: Path) -> None:
    """Generate missing secret files in VAR_DIR (mode 600); only commands that run the service call it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    for name, make in LOCAL_SECRETS.items():
        path = var_dir / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())


def var_dir_of(env: dict[str, str] | None = None) -> Path:
    """VAR_DIR of the environment (default: var/ in the repository)."""
    env = os.environ if env is None else env
    return Path(env.get("VAR_DIR") or PROJECT_ROOT / "var")


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
    worker_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    claim_timeout_seconds: int = 60
    sweep_seconds: int = 30
    outage_tolerance_seconds: int = 600
    web_access_log: bool = False
    var_dir: Path = PROJECT_ROOT / "var"
    flower_port: int = 5555
    smtp_url: str = "smtp://127.0.0.1:8025"
    mail_from: str = "Dialer <no-reply@dialer.localhost>"
    smtp_retries: int = 5
    smtp_retry_seconds: int = 10
    session_timeout_minutes: int = 480
    lock_after_failed_codes: int = 10
    trusted_proxies: int = 0
    undo_window_hours: int = 72

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables; SettingsError names every bad or missing one."""
        env = dict(os.environ if env is None else env)
        var_dir = var_dir_of(env)
        read = _Reader(env)
        values = {
            "max_rows": read.int("MAX_ROWS", 500, 1),
            "max_upload_bytes": read.int("MAX_UPLOAD_BYTES", 5 * 1024 * 1024, 1024),
            "max_columns": read.int("MAX_COLUMNS", 200, 1),
            "chunk_size": read.int("CHUNK_SIZE", 100, 1),
            "argon2_memory_kib": read.int("ARGON2_MEMORY_KIB", 19456, 8),
            "argon2_time_cost": read.int("ARGON2_TIME_COST", 2, 1),
            "argon2_parallelism": read.int("ARGON2_PARALLELISM", 1, 1),
            "password_retention_hours": read.int("PASSWORD_RETENTION_HOURS", 24, 1),
            "token_ttl_hours": read.int("TOKEN_TTL_HOURS", 12, 1),
            "port": read.int("PORT", 8000, 1),
            "session_cookie_secure": read.bool("SESSION_COOKIE_SECURE", False),
            "broker_visibility_timeout": read.int("BROKER_VISIBILITY_TIMEOUT", 300, 10),
            "worker_processes": read.int("WORKER_PROCESSES", os.cpu_count() or 1, 1),
            "claim_timeout_seconds": read.int("CLAIM_TIMEOUT_SECONDS", 60, 5),
            "sweep_seconds": read.int("SWEEP_SECONDS", 30, 1),
            "outage_tolerance_seconds": read.int("OUTAGE_TOLERANCE_SECONDS", 600, 0),
            "web_access_log": read.bool("WEB_ACCESS_LOG", False),
            "flower_port": read.int("FLOWER_PORT", 5555, 1),
            "smtp_url": read.smtp_url("SMTP_URL", "smtp://127.0.0.1:8025"),
            "mail_from": env.get("MAIL_FROM") or "Dialer <no-reply@dialer.localhost>",
            "smtp_retries": read.int("SMTP_RETRIES", 5, 0),
            "smtp_retry_seconds": read.int("SMTP_RETRY_SECONDS", 10, 1),
            "session_timeout_minutes": read.int("SESSION_TIMEOUT_MINUTES", 480, 1),
            "lock_after_failed_codes": read.int("LOCK_AFTER_FAILED_CODES", 10, 1),
            "trusted_proxies": read.int("TRUSTED_PROXIES", 0, 0),
            "undo_window_hours": read.int("UNDO_WINDOW_HOURS", 72, 0),
        }
        secret_key = read.secret("SECRET_KEY", var_dir, "secret_key")
        encryption_key = read.secret("ENCRYPTION_KEY", var_dir, "encryption.key")
        if encryption_key:
            try:
                Fernet(encryption_key.encode())
            except ValueError:
                read.problems.append("ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes)")
        flower_auth = env.get("FLOWER_BASIC_AUTH") or "admin:" + read.secret(
            "FLOWER_BASIC_AUTH", var_dir, "flower_password"
        )
        if ":" not in flower_auth:
            read.problems.append("FLOWER_BASIC_AUTH must look like user:password")
        if read.problems:
            raise SettingsError("; ".join(read.problems))
        flower_user, flower_password = flower_auth.split(":", 1)
        return cls(
            database_url=env.get("DATABASE_URL") or "sqlite:///" + str(var_dir / "app.db"),
            redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            secret_key=secret_key,
            encryption_key=encryption_key,
            flower_user=flower_user,
            flower_password=flower_password,
            demo_admin_password=env.get("DEMO_ADMIN_PASSWORD") or None,
            login_rate_limit=env.get("LOGIN_RATE_LIMIT") or "30 per minute",
            task_queue=env.get("TASK_QUEUE") or "imports",
            var_dir=var_dir,
            **values,
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
            "WORKER_PROCESSES": str(self.worker_processes),
            "CLAIM_TIMEOUT_SECONDS": str(self.claim_timeout_seconds),
            "SWEEP_SECONDS": str(self.sweep_seconds),
            "OUTAGE_TOLERANCE_SECONDS": str(self.outage_tolerance_seconds),
            "WEB_ACCESS_LOG": "true" if self.web_access_log else "false",
            "VAR_DIR": str(self.var_dir),
            "FLOWER_PORT": str(self.flower_port),
            "SMTP_URL": self.smtp_url,
            "MAIL_FROM": self.mail_from,
            "SMTP_RETRIES": str(self.smtp_retries),
            "SMTP_RETRY_SECONDS": str(self.smtp_retry_seconds),
            "SESSION_TIMEOUT_MINUTES": str(self.session_timeout_minutes),
            "LOCK_AFTER_FAILED_CODES": str(self.lock_after_failed_codes),
            "TRUSTED_PROXIES": str(self.trusted_proxies),
            "UNDO_WINDOW_HOURS": str(self.undo_window_hours),
        } | ({"DEMO_ADMIN_PASSWORD": self.demo_admin_password} if self.demo_admin_password else {})

    def with_(self, **changes: object) -> Settings:
        """A copy with some values changed (tests, CLI overrides)."""
        return replace(self, **changes)
