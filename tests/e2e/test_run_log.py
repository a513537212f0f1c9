"""`make run` (scripts/run.py) as an operator starts it: its log names where each generated secret lives,
never the secret; a retention setting too short for its window stops it, and the worker, at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.run import free_port
from shared.settings import LOCAL_SECRETS, PROJECT_ROOT
from tests.support.workers import worker_env

BASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("DATABASE_", "SECRET_KEY", "ENCRYPTION_KEY", "FLOWER_", "SMTP_", "DEMO_"))
}


def run_env(var_dir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return (
        BASE_ENV
        | {
            "VAR_DIR": str(var_dir),
            "REDIS_URL": redis_url,
            "TASK_QUEUE": f"run-log-{os.getpid()}",
            "PORT": str(free_port()),
            "FLOWER_PORT": str(free_port()),
            "WEB_CONCURRENCY": "1",
            "WORKER_PROCESSES": "1",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "PYTHONUNBUFFERED": "1",
        }
        | extra
    )


def test_the_run_log_names_where_secrets_live_and_holds_none_of_them(tmp_path, redis_url):
    log_path = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.run"],
        cwd=PROJECT_ROOT,
        env=run_env(tmp_path / "var", redis_url),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while b"ready after" not in log_path.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as an operator stops it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = log_path.read_text()
    var = tmp_path / "var"
    for name in LOCAL_SECRETS:
        secret = (var / name).read_text().strip()
        assert len(secret) >= 12 and secret not in log, f"{name} is in the run log"
        assert str(var / name) in log, f"the run log does not say where {name} lives"
    assert f"password: in {var / 'flower_password'}" in log
    # The demo admin's first password is still shown (seed-demo generated it).
    assert "Generated admin password (shown once):" in log


def test_a_retention_shorter_than_the_undo_window_stops_run_and_the_worker_at_start(tmp_path, base_settings):
    short = {"ROW_DATA_RETENTION_DAYS": "2", "UNDO_WINDOW_HOURS": "72"}
    run = subprocess.run(
        [sys.executable, "-m", "scripts.run"],
        cwd=PROJECT_ROOT,
        env=run_env(tmp_path / "var", base_settings.redis_url, **short),
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = "ROW_DATA_RETENTION_DAYS (2 days) is shorter than UNDO_WINDOW_HOURS (72 hours)"
    assert run.returncode != 0 and expected in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "var" / "app.db").exists()  # nothing started

    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO"],
        cwd=PROJECT_ROOT,
        env=worker_env(base_settings) | {"UPLOAD_RETENTION_DAYS": "1", "UNDO_WINDOW_HOURS": "48"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode != 0
    assert "UPLOAD_RETENTION_DAYS (1 days) is shorter than UNDO_WINDOW_HOURS (48 hours)" in worker.stderr
