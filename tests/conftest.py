"""Fixtures mirroring the architecture: settings, engine, session, app, client, worker.

Real parts only: a real Redis (started here when none answers), SQLite and PostgreSQL
(where one answers at TEST_POSTGRES_URL), and a real Celery worker process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from shared import access_stamp
from shared.db import Base, make_engine, make_sessionmaker, normalise_url
from shared.settings import PROJECT_ROOT, Settings
from shared.tenants import seed_demo
from tests.mailbox import Mailbox

ADMIN_PASSWORD = "Demo-Admin-Pass-1"
TEST_REDIS_DB = 9
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis that answers: the local one, or one this suite starts."""
    from scripts.local_redis import redis_answers, start_redis

    url = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")
    proc = None
    if not redis_answers(url):
        url = f"redis://127.0.0.1:{_free_port()}/{TEST_REDIS_DB}"
        proc = start_redis(url)
    Redis.from_url(url).flushdb()
    yield url
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


def _postgres_reachable() -> str | None:
    try:
        eng = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return f"no PostgreSQL answers at TEST_POSTGRES_URL={POSTGRES_URL} ({type(exc).__name__})"


def migrate(url: str) -> None:
    """Bring a database to the newest schema with the project's Alembic chain."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        reason = _postgres_reachable()
        if reason:
            pytest.skip(reason)
        url = POSTGRES_URL
        eng = make_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port; workers send login codes to it."""
    box = Mailbox(_free_port())
    yield box
    box.stop()


@pytest.fixture(scope="session")
def base_settings(
    database_url: str, redis_url: str, mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings for one database; cheap argon2 cost so the suite stays fast."""
    # Each database gets its own Redis database, so a worker never takes another's tasks.
    offset = 0 if database_url.startswith("sqlite") else 1
    base, _, number = redis_url.rpartition("/")
    return Settings(
        database_url=database_url,
        redis_url=f"{base}/{int(number) + offset}",
        task_queue=f"test-{os.getpid()}-{offset}",
        secret_key="test-secret-key",
        encryption_key=Fernet.generate_key().decode(),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        chunk_size=50,
        login_rate_limit="10000 per minute",
        var_dir=tmp_path_factory.mktemp("var"),
        smtp_url=mailbox.url,
        smtp_retries=2,
        smtp_retry_seconds=1,
    )


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings


@pytest.fixture(scope="session")
def engine(base_settings: Settings) -> Iterator[Engine]:
    eng = make_engine(base_settings)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine, base_settings: Settings) -> sessionmaker[Session]:
    """The tests' own sessions: like the web's and the worker's, their access changes renew the stamp."""
    factory = make_sessionmaker(engine)
    client = Redis.from_url(base_settings.redis_url)
    access_stamp.watch(factory, lambda: client)
    return factory


@pytest.fixture
def clean_db(engine: Engine, base_settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Empty every table, then seed the demo tenant with a known admin password."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):  # a chunk of the previous test may still be finishing in the worker
        try:
            with engine.begin() as conn:
                conn.execute(Base.metadata.tables["users"].update().values(import_id=None))
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(1)
    with sessions.begin() as session:
        seed_demo(session, base_settings.with_(demo_admin_password=ADMIN_PASSWORD))
    # Only our own keys: flushing would also drop the broker's queue bindings under a live worker.
    redis = Redis.from_url(base_settings.redis_url)
    for key in redis.scan_iter("import:*"):
        redis.delete(key)
    access_stamp.renew(redis)  # the tables were emptied by hand: no cached token may outlive that


@pytest.fixture
def session(clean_db: None, sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


@pytest.fixture
def app(clean_db: None, base_settings: Settings):
    """The web app; every JSON answer it gives in the test must match the contract's model for it."""
    from tests.support.contract import check_answers
    from web import create_app

    app = create_app(base_settings)
    app.config.update(TESTING=True)
    violations = check_answers(app)
    yield app
    assert not violations, "answers that break the contract:\n" + "\n".join(violations)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token(client) -> str:
    resp = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["token"]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a worker process use these settings."""
    return dict(os.environ) | settings.to_env()


class WorkerProcess:
    """A real `celery -A worker worker` process consuming from the test Redis.

    app names another module exporting the Celery app (tests.support.hooked_worker); env adds variables.
    """

    def __init__(
        self,
        settings: Settings,
        concurrency: int = 2,
        name: str = "test",
        app: str = "worker",
        beat: bool = False,
        env: dict[str, str] | None = None,
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
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _session_worker_name(settings: Settings) -> str:
    return Path(settings.database_url).name or "db"


@pytest.fixture(scope="session")
def worker(base_settings: Settings) -> Iterator[WorkerProcess]:
    """A real worker with two processes for the session's database."""
    proc = WorkerProcess(base_settings, concurrency=2, name=_session_worker_name(base_settings))
    yield proc
    proc.stop()


class PausedWorker:
    """The session's worker, if running, takes no task until resumed and has none in hand.

    Its tasks claim work from the database, whoever queued it: paused, it cannot take a test's
    chunk away from the worker that test watches.
    """

    def __init__(self, settings: Settings) -> None:
        from worker import create_celery

        self.queue = settings.task_queue
        self.control = create_celery(settings).control
        node = f"{_session_worker_name(settings)}-{os.getpid()}@localhost"  # as WorkerProcess names it
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


@pytest.fixture
def hooked_world(clean_db: None, base_settings: Settings) -> Iterator[Callable[..., HookedWorld]]:
    """Start a HookedWorld: hooked_world({"HOOK_FAIL_CHUNK": "1"}, chunk_size=3)."""
    worlds: list[HookedWorld] = []
    paused = PausedWorker(base_settings)

    def start(hooks: dict[str, str], **changes: object) -> HookedWorld:
        queue = f"{base_settings.task_queue}-hooked"  # the session's worker never gets these messages
        worlds.append(HookedWorld(base_settings.with_(task_queue=queue, **changes), hooks))
        return worlds[-1]

    yield start
    for world in worlds:
        world.close()
    paused.resume()


class ImportActions:
    """What an API client does, step by step (flaskr-style action helpers)."""

    def __init__(self, client, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth

    def reference(self, kind: str) -> dict[str, int]:
        items = self.client.get(f"/api/v1/{kind}", headers=self.auth).get_json()["items"]
        return {item["name"]: item["id"] for item in items}

    def upload(self, data: bytes, filename: str = "users.csv"):
        import io

        return self.client.post(
            "/api/v1/uploads",
            headers=self.auth,
            data={"file": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
        )

    def start(self, upload_id: str, mapping: dict, dry_run: bool = False):
        return self.client.post(
            "/api/v1/imports",
            headers=self.auth,
            json={"upload_id": upload_id, "mapping": mapping, "dry_run": dry_run},
        )

    def status(self, job_id: str) -> dict:
        return self.client.get(f"/api/v1/imports/{job_id}", headers=self.auth).get_json()

    def wait_done(self, job_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status["status"] in ("succeeded", "failed", "cancelled"):
                return status
            time.sleep(0.2)
        raise AssertionError(f"import {job_id} did not finish: {status}")

    def wait_settled(self, job_id: str, timeout: float = 90) -> dict:
        """Wait until nothing moves the import on by itself: ended, undone, no regeneration running."""
        from shared.progress import settled

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if settled(status):
                return status
            time.sleep(0.2)
        raise AssertionError(f"import {job_id} did not settle: {status}")

    def post(self, job_id: str, action: str, body: dict | None = None):
        """POST /api/v1/imports/<id>/<action> (undo, regenerate-passwords, retry, ...)."""
        return self.client.post(f"/api/v1/imports/{job_id}/{action}", headers=self.auth, json=body)

    def run(self, data: bytes, mapping: dict, filename: str = "users.csv", dry_run: bool = False) -> dict:
        """Upload, start and wait; returns the final status."""
        up = self.upload(data, filename)
        assert up.status_code == 201, up.get_json()
        started = self.start(up.get_json()["upload_id"], mapping, dry_run)
        assert started.status_code == 202, started.get_json()
        return self.wait_done(started.get_json()["id"])

    def download(self, job_id: str, which: str) -> tuple[int, str]:
        resp = self.client.get(f"/api/v1/imports/{job_id}/{which}.csv", headers=self.auth)
        return resp.status_code, resp.get_data().decode("utf-8-sig")


@pytest.fixture
def imports(client, auth) -> ImportActions:
    return ImportActions(client, auth)
