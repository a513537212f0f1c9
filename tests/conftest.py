"""Fixtures mirroring the architecture: settings, engine, session, app, client, worker.

Real parts only: a real Redis (started here when none answers), SQLite and PostgreSQL
(where one answers at TEST_POSTGRES_URL), and a real Celery worker process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from scripts.run import free_port
from shared.accounts import access_stamp
from shared.db import Base, make_engine, make_sessionmaker
from shared.dialer.tenants import seed_demo
from shared.settings import Settings
from tests.support.accounts import ADMIN_PASSWORD
from tests.support.actions import ImportActions
from tests.support.databases import POSTGRES_URL, migrate, postgres_unreachable
from tests.support.mailbox import Mailbox
from tests.support.secrets import remember_secret
from tests.support.workers import HookedWorld, PausedWorker, WorkerProcess, session_worker_name

TEST_REDIS_DB = 9


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `last` run after all the others (the search of the suite's logs for secrets)."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: order kept


@pytest.fixture(scope="session", autouse=True)
def suite_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What the in-process web and domain log goes to suite.log too, beside the workers' logs."""
    from shared import log_context

    handler = logging.FileHandler(tmp_path_factory.getbasetemp() / "suite.log")
    handler.setFormatter(log_context.formatter("text"))
    handler.addFilter(log_context.ContextFilter())
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis that answers: the local one, or one this suite starts."""
    from scripts.local_redis import redis_answers, start_redis

    url = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")
    proc = None
    if not redis_answers(url):
        url = f"redis://127.0.0.1:{free_port()}/{TEST_REDIS_DB}"
        proc = start_redis(url)
    Redis.from_url(url).flushdb()
    yield url
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        reason = postgres_unreachable()
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
    box = Mailbox(free_port())
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
    settings = Settings(
        database_url=database_url,
        redis_url=f"{base}/{int(number) + offset}",
        task_queue=f"test-{os.getpid()}-{offset}",
        secret_key="test-secret-key",
        encryption_key=Fernet.generate_key().decode(),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        chunk_size=50,
        login_rate_limit="10000 per minute",
        uploads_per_minute=100_000,  # the suite uploads far faster than a tenant may
        import_starts_per_minute=100_000,
        var_dir=tmp_path_factory.mktemp("var"),
        smtp_url=mailbox.url,
        smtp_retries=2,
        smtp_retry_seconds=1,
    )
    remember_secret(settings.metrics_token, settings.flower_password, settings.encryption_key)
    return settings


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
    for pattern in ("import:*", "streams:*"):
        for key in redis.scan_iter(pattern):
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
    remember_secret(resp.get_json()["token"])
    return resp.get_json()["token"]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def worker(base_settings: Settings) -> Iterator[WorkerProcess]:
    """A real worker with two processes for the session's database."""
    proc = WorkerProcess(base_settings, concurrency=2, name=session_worker_name(base_settings))
    yield proc
    proc.stop()


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


@pytest.fixture
def imports(client, auth) -> ImportActions:
    return ImportActions(client, auth)
