"""`make run`: everything on one machine, in the foreground, stopped together by Ctrl-C.

Redis (when none answers at REDIS_URL), migrations, the demo tenant, then the web
(gunicorn), a Celery worker with beat, Flower, and (when SMTP_URL is unset) a local SMTP
server that prints every message it receives, run side by side through honcho.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from honcho.manager import Manager

from scripts.local_redis import redis_answers, redis_binary, safe_url, start_redis, stop_redis
from shared.settings import ENV, PROJECT_ROOT, Settings, SettingsError, ensure_local_secrets, var_dir_of

BIN = Path(sys.executable).parent  # the venv's executables sit beside its python
READY_TIMEOUT_SECONDS = 180


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1 (the local SMTP server; the tests' servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(settings: Settings) -> dict[str, str]:
    """The environment every child gets: the resolved settings, so all of them agree."""
    # Flower reads FLOWER_BASIC_AUTH itself, which keeps the password off its command line.
    env = dict(os.environ) | settings.to_env()
    env["PYTHONUNBUFFERED"] = "1"
    # gunicorn reads it: one web process per core unless the operator says otherwise.
    env.setdefault("WEB_CONCURRENCY", str(os.cpu_count() or 1))
    return env


def processes(settings: Settings, local_smtp: bool = False) -> dict[str, list[str]]:
    """The long-running processes, by name (with the local SMTP server when asked)."""
    smtp = urlsplit(settings.smtp_url)
    mail = {
        # aiosmtpd's Debugging handler prints each message it receives, in full, to this log.
        "smtp": [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{smtp.hostname}:{smtp.port}"],
    }
    return (mail if local_smtp else {}) | {
        "web": [
            str(BIN / "gunicorn"),
            "--config",
            "python:web.gunicorn_config",  # uvicorn workers: event streams and slow clients hold no thread
            "--bind",
            f"127.0.0.1:{settings.port}",
            # An access log line costs each request about a quarter of its time: opt in.
            *(["--access-logfile", "-"] if settings.web_access_log else []),
            "web.asgi:create_asgi()",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "worker",
            "worker",
            "-B",
            "--loglevel=INFO",
            f"--schedule={settings.var_dir / 'celerybeat-schedule'}",
        ],
        # worker.flower runs `celery -A worker flower` with /metrics behind the same login.
        "flower": [
            sys.executable,
            "-m",
            "worker.flower",
            "--address=127.0.0.1",
            f"--port={settings.flower_port}",
        ],
        # Says "ready" (and how long it took) once /readyz answers 200, then waits.
        "ready": [sys.executable, "-m", "scripts.run", "--announce"],
    }


def _step(title: str, command: list[str], env: dict[str, str]) -> str:
    """Run one set-up command to its end, echoing and returning its output."""
    print(f"==> {title}", flush=True)
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if done.stdout:
        print(done.stdout.rstrip(), flush=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {title} failed (exit code {done.returncode})")
    return done.stdout


def _login_password(settings: Settings, seed_output: str) -> str:
    """Where the demo admin's password comes from, as the banner tells it."""
    if settings.demo_admin_password:
        return "the value of DEMO_ADMIN_PASSWORD"
    # seed-demo prints "Generated admin password (shown once): VALUE" when it made one.
    found = re.search(r"generated[^\n]*password[^:\n]*:[ \t]*(\S+)", seed_output, re.IGNORECASE)
    if found:
        return found.group(1)
    return (
        "the one seed-demo printed when it first created the admin "
        "(or set DEMO_ADMIN_PASSWORD before the first run)"
    )


def secret_places(settings: Settings, env: dict[str, str] | None = None) -> dict[str, str]:
    """Where each secret setting's value lives (a file of VAR_DIR, or the variable that was set), by
    variable name: the banner names the place, never the value, so no log keeps a generated secret."""
    env = dict(os.environ if env is None else env)
    return {
        spec.name: (
            f"{spec.name} (set in the environment)"
            if env.get(spec.name)
            else str(settings.var_dir / spec.secret_file)
        )
        for spec in ENV.values()
        if spec.secret_file
    }


def banner(settings: Settings, password: str, local_smtp: bool = False) -> str:
    """The URLs and how to log in."""
    web = f"http://127.0.0.1:{settings.port}"
    smtp = urlsplit(settings.smtp_url)
    places = secret_places(settings)
    mail = (
        f"  Mail       local SMTP server {smtp.hostname}:{smtp.port}: emails are printed here (smtp |)"
        if local_smtp
        else f"  Mail       SMTP server {smtp.hostname}:{smtp.port} (SMTP_URL)"
    )
    return "\n".join(
        [
            "",
            "=" * 72,
            f"  Web        {web}   (health {web}/healthz, readiness {web}/readyz)",
            f"  API docs   {web}/api/v1/openapi.json",
            f"  Log in     workspace: demo   user: admin   password: {password}",
            f"  Flower     http://127.0.0.1:{settings.flower_port}   user: {settings.flower_user}"
            f"   password: in {places['FLOWER_BASIC_AUTH']}",
            mail,
            metrics_line(settings),
            "  Secrets    (never printed; read them where they live)",
            *(f"    {name:<20} {place}" for name, place in places.items()),
            "  Ctrl-C stops everything.",
            "=" * 72,
            "",
        ]
    )


def metrics_line(settings: Settings) -> str:
    """Where the metrics are and where their token lives (never the token itself)."""
    where = "METRICS_TOKEN" if os.environ.get("METRICS_TOKEN") else settings.var_dir / "metrics_token"
    return (
        f"  Metrics    http://127.0.0.1:{settings.port}/metrics and worker"
        f" http://127.0.0.1:{settings.worker_metrics_port}/metrics   bearer token: {where}"
    )


def metrics_env(settings: Settings, name: str) -> dict[str, str]:
    """The web's and the worker's processes each count into a directory of their own (prometheus-client)."""
    if name not in ("web", "worker"):
        return {}
    return {"PROMETHEUS_MULTIPROC_DIR": str(settings.var_dir / f"metrics-{name}")}


def announce(settings: Settings) -> NoReturn:
    """Wait for /readyz to answer 200, say so, then wait to be stopped with the others."""
    started = time.monotonic()
    url = f"http://127.0.0.1:{settings.port}/readyz"
    last = "no answer yet"
    while time.monotonic() - started < READY_TIMEOUT_SECONDS:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read(500).decode("utf-8", "replace").strip()
            print(f"ready after {time.monotonic() - started:.1f} s: {url} -> 200 {body}", flush=True)
            break
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read(500).decode('utf-8', 'replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    else:
        print(f"not ready after {READY_TIMEOUT_SECONDS} s: {url} -> {last}", flush=True)
    # Exiting would make honcho stop everything, so wait for its SIGTERM instead.
    while True:
        signal.pause()


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def open_files_to_hard_limit() -> None:
    """Each open event stream is a socket: let the web (a child, which inherits it) hold thousands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def main(argv: list[str] | None = None) -> int:
    """Set up and run the whole service until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    ensure_local_secrets(var_dir_of())  # the first run generates var/ secrets; reading never writes
    try:
        settings = Settings.from_env()
    except SettingsError as exc:  # a bad or too short setting: say which, without a traceback
        raise SystemExit(f"error: {exc}") from None
    if args == ["--announce"]:
        announce(settings)

    # No SMTP_URL: a local SMTP server prints the mail, so imported users can log in here too.
    local_smtp = not os.environ.get("SMTP_URL")
    if local_smtp:
        settings = settings.with_(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    env = child_env(settings)
    open_files_to_hard_limit()
    redis_proc: subprocess.Popen | None = None
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the finally below stops our Redis
    try:
        if redis_answers(settings.redis_url):
            print(f"==> Redis answers at {safe_url(settings.redis_url)}", flush=True)
        else:
            print(f"==> starting Redis ({redis_binary()}) at {safe_url(settings.redis_url)}", flush=True)
            redis_proc = start_redis(settings.redis_url)
        _step("migrations: alembic upgrade head", [str(BIN / "alembic"), "upgrade", "head"], env)
        seed_output = _step(
            "demo data: flask --app web seed-demo", [str(BIN / "flask"), "--app", "web", "seed-demo"], env
        )
        print(banner(settings, _login_password(settings, seed_output), local_smtp), flush=True)

        manager = Manager()
        for name, command in processes(settings, local_smtp).items():
            manager.add_process(
                name, shlex.join(command), env=env | metrics_env(settings, name), cwd=str(PROJECT_ROOT)
            )
        manager.loop()  # returns once every process has stopped
        return manager.returncode or 0
    except KeyboardInterrupt:
        return 130
    finally:
        if redis_proc is not None:
            print("==> stopping the Redis started for this run", flush=True)
            stop_redis(redis_proc)


if __name__ == "__main__":
    sys.exit(main())
