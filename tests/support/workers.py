"""Real Celery worker processes for the tests: the suite's worker, one paused, one with hooks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from shared.settings import PROJECT_ROOT, Settings
from tests.support.accounts import ADMIN_PASSWORD
from tests.support.actions import ImportActions


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a worker process use these settings."""
    return dict(os.environ) | settings.to_env()


class WorkerProcess:
    """A real `celery -A worker worker` process consuming from the test Redis.

    app names another module exporting the Celery app (tests.support.hooked_worker); env adds variables,
    args options of `celery worker`.
    """

    def __init__(
        self,
        settings: Settings,
        concurrency: int = 2,
        name: str = "test",
        app: str = "worker",
        beat: bool = False,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.name = f"{name}-{os.getpid()}@localhost"
        log = Path(settings.var_dir) / f"worker-{name}.log"
        self.log_path = log
        # Beat (the periodic sweep) runs inside the worker, as under `make run`.
        extra = ["-B", f"--schedule={Path(settings.var_dir) / f'beat-{name}'}"] if beat else []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                *extra,
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "-n",
                self.name,
                "--without-gossip",
                "--without-mingle",
                *(args or []),
            ],
            cwd=PROJECT_ROOT,
            env=worker_env(settings) | (env or {}),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(settings)

    def _wait_ready(self, settings: Settings) -> None:
        from worker import create_celery

        celery = create_celery(settings)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            replies = celery.control.ping(destination=[self.name], timeout=0.5) or []
            if replies:
                return
        raise RuntimeError(f"worker did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session, and its children: TERM, then KILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def session_worker_name(settings: Settings) -> str:
    """The name of the suite's worker for these settings' database."""
    return Path(settings.database_url).name or "db"


class PausedWorker:
    """The session's worker, if running, takes no task until resumed and has none in hand.

    Its tasks claim work from the database, whoever queued it: paused, it cannot take a test's
    chunk away from the worker that test watches.
    """

    def __init__(self, settings: Settings) -> None:
        from worker import create_celery

        self.queue = settings.task_queue
        self.control = create_celery(settings).control
        node = f"{session_worker_name(settings)}-{os.getpid()}@localhost"  # as WorkerProcess names it
        replies = self.control.ping(destination=[node], timeout=0.5) or []
        self.names = [name for reply in replies for name in reply]
        if self.names:
            self.control.cancel_consumer(self.queue, destination=self.names, reply=True, timeout=5)
            inspect = self.control.inspect(destination=self.names, timeout=1)
            deadline = time.monotonic() + 60
            while any((inspect.active() or {}).values()) or any((inspect.reserved() or {}).values()):
                assert time.monotonic() < deadline, "the session's worker did not finish its task"
                time.sleep(0.1)

    def resume(self) -> None:
        if self.names:
            self.control.add_consumer(self.queue, destination=self.names, reply=True, timeout=5)


class HookedWorld:
    """A worker of its own with test hooks in its chunk transactions (tests/support/hooked_worker.py),
    and an API client whose imports go to it."""

    def __init__(self, settings: Settings, hooks: dict[str, str]) -> None:
        from web import create_app

        self.settings = settings
        self.redis = Redis.from_url(settings.redis_url)
        prefix = f"import:hook:{settings.task_queue}"  # import:* keys are wiped by clean_db as well
        self.marker_key, self.release_key = f"{prefix}:held", f"{prefix}:release"
        self.redis.delete(self.marker_key, self.release_key)
        env = {"HOOK_MARKER": self.marker_key, "HOOK_RELEASE": self.release_key, **hooks}
        self.worker = WorkerProcess(settings, concurrency=1, name="hooked", app="tests.support.hooked_worker",
                                    env=env)  # fmt: skip
        client = create_app(settings).test_client()
        token = client.post(
            "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
        ).get_json()["token"]
        self.imports = ImportActions(client, {"Authorization": f"Bearer {token}"})

    def wait_held(self, timeout: float = 60) -> int:
        """The id of the process holding its chunk transaction open (HOOK_HOLD_CHUNK), once it does."""
        deadline = time.monotonic() + timeout
        while (held := self.redis.get(self.marker_key)) is None:
            log = self.worker.log_path
            assert self.worker.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        return int(held)

    def close(self) -> None:
        self.redis.set(self.release_key, "1")  # a process still holding lets go
        self.worker.stop()
        self.redis.delete(self.marker_key, self.release_key)
        self.redis.close()
