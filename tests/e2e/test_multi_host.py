"""One import over several hosts: a data host, two worker hosts and a web host, each a network
namespace; one worker host loses its link mid-chunk and the other finishes the import.

Runs as root where `ip netns` works (skipped with the reason elsewhere). The hosts' addresses
are in a /24 that exists only inside the namespaces this test makes; the test reaches the web
host from a client host of its own, and reads the database through its unix socket.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import select, text

from shared.accounts.passwords import verify_password
from shared.db import make_engine, make_sessionmaker
from shared.dialer.tenants import seed_demo
from shared.models import ImportRow, RowStatus, User
from shared.settings import PROJECT_ROOT, Settings
from tests.support.accounts import ADMIN_PASSWORD
from tests.support.builders import basic_mapping, parse_csv
from tests.support.databases import migrate
from tests.support.hosts import Hosts, unavailable

ROWS = 80  # eight chunks of ten rows over the two hosts' processes
DEADLINE = 30  # seconds for any one state to be reached; the test takes about 20 s in all
POSTGRES_USER = "postgres"  # initdb refuses to run as root


def _skip_reason() -> str | None:
    needed = ("initdb", "postgres", "redis-server", "runuser")
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        return f"missing on this machine: {', '.join(missing)}"
    return unavailable()


def _until(what: str, check: Any, logs: list[Path] = ()) -> Any:
    """Poll until `check()` answers something true; fail naming what never happened."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)
    raise AssertionError(f"never happened: {what}\n{tails}")


class Web:
    """The API as a script on the client host sees it, over the web host's address."""

    def __init__(self, hosts: Hosts, address: str, port: int) -> None:
        self.hosts, self.address, self.port = hosts, address, port
        self.headers: dict[str, str] = {}

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.address, self.port, timeout=30)
        conn.sock = self.hosts.connect("client", self.address, self.port, timeout=30)
        headers = self.headers | ({"Content-Type": ctype} if ctype else {})
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        status, data = self.call(method, path, payload, "application/json" if payload else "")
        assert status < 400, f"{method} {path} -> {status} {data[:300]!r}"
        return json.loads(data)

    def ready(self) -> bool:
        try:
            return self.call("GET", "/readyz")[0] == 200
        except OSError:
            return False


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    made = Hosts(f"mh{os.getpid()}", f"10.213.{os.getpid() % 250}")
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def cluster(hosts: Hosts) -> Iterator[dict[str, Any]]:
    """The data host's PostgreSQL and Redis, the worker hosts' workers, the web host's gunicorn."""
    folder = Path(tempfile.mkdtemp(prefix="multi-host-"))
    try:
        yield _start(hosts, folder)
    finally:
        hosts.remove()  # before the folder goes: the servers write into it
        shutil.rmtree(folder, ignore_errors=True)


def _start(hosts: Hosts, folder: Path) -> dict[str, Any]:
    data = hosts.add("data")
    for host in ("worker1", "worker2", "web", "client"):
        hosts.add(host)
    pgdata, sockets = folder / "pgdata", folder / "sockets"
    sockets.mkdir()
    shutil.chown(folder, POSTGRES_USER)
    shutil.chown(sockets, POSTGRES_USER)
    subprocess.run(
        ["runuser", "-u", POSTGRES_USER, "--", "initdb", "-D", str(pgdata), "-A", "trust", "-U", "postgres",
         "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    with (pgdata / "pg_hba.conf").open("a") as hba:  # the hosts' subnet, and nothing else
        hba.write(f"host all all {hosts.subnet}.0/24 trust\n")
    # A host cut off inside a transaction keeps its locks until the server gives its connection up:
    # these make the server notice within seconds (see docs/operations.md, "Deployment notes").
    hosts.run(
        "data",
        ["postgres", "-D", str(pgdata), "-c", f"listen_addresses={data}", "-c", "port=5432",
         "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off", "-c", "max_connections=60",
         "-c", "idle_in_transaction_session_timeout=5s", "-c", "tcp_user_timeout=5000",
         "-c", "tcp_keepalives_idle=2", "-c", "tcp_keepalives_interval=1", "-c", "tcp_keepalives_count=2"],
        folder / "postgres.log", env=dict(os.environ), user=POSTGRES_USER, stop=signal.SIGINT,
    )  # fmt: skip
    hosts.run(
        "data",
        ["redis-server", "--bind", data, "--port", "6379", "--protected-mode", "no", "--save", "",
         "--appendonly", "no", "--unixsocket", str(sockets / "redis.sock")],
        folder / "redis.log", env=dict(os.environ),
    )  # fmt: skip
    local_db = f"postgresql://postgres@/postgres?host={sockets}&port=5432"
    logs = [folder / "postgres.log", folder / "redis.log"]
    _until("PostgreSQL answers on the data host", lambda: _answers(local_db), logs)
    _until("Redis answers on the data host", lambda: _redis_answers(sockets / "redis.sock"), logs)
    migrate(local_db)
    settings = Settings(
        database_url=f"postgresql://postgres@{data}:5432/postgres",
        redis_url=f"redis://{data}:6379/0",
        task_queue=f"multi-host-{uuid.uuid4().hex[:8]}",
        secret_key="multi-host",
        encryption_key=Fernet.generate_key().decode(),
        argon2_memory_kib=32768,  # about 60 ms a password: a chunk lasts long enough to be cut in
        argon2_time_cost=2,
        login_rate_limit="10000 per minute",
        var_dir=folder,
        worker_processes=2,  # one process on each worker host
        claim_timeout_seconds=5,  # the takeover of the cut host's claim waits this long
        sweep_seconds=1,
        web_threads=4,
    )
    engine = make_engine(settings.with_(database_url=local_db))
    with make_sessionmaker(engine).begin() as session:
        seed_demo(session, settings.with_(demo_admin_password=ADMIN_PASSWORD))
    env = dict(os.environ) | settings.to_env() | {"PYTHONUNBUFFERED": "1", "WEB_CONCURRENCY": "1"}
    for host in ("worker1", "worker2"):
        # Beat (the sweep) runs on worker2, the host that stays.
        beat = ["-B", f"--schedule={folder / 'beat'}"] if host == "worker2" else []
        hosts.run(
            host,
            [sys.executable, "-m", "celery", "-A", "worker", "worker", *beat, "--loglevel=INFO",
             "--concurrency=1", "-n", f"{host}@{host}", "--without-gossip", "--without-mingle"],
            folder / f"{host}.log", env=env, cwd=PROJECT_ROOT,
        )  # fmt: skip
    web_address = hosts.addresses["web"]
    hosts.run(
        "web",
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "python:web.gunicorn_config",
         "--bind", f"{web_address}:8000", "web.asgi:create_asgi()"],
        folder / "web.log", env=env, cwd=PROJECT_ROOT,
    )  # fmt: skip
    logs += [folder / "worker1.log", folder / "worker2.log", folder / "web.log"]
    for host in ("worker1", "worker2"):
        log = folder / f"{host}.log"
        ready = lambda log=log: " ready." in log.read_text(errors="replace")  # noqa: E731
        _until(f"the worker on {host} is ready", ready, logs)
    web = Web(hosts, web_address, 8000)
    _until("the web host answers /readyz", web.ready, logs)
    return {"web": web, "engine": engine, "settings": settings, "folder": folder, "logs": logs}


def _answers(url: str) -> bool:
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _redis_answers(path: Path) -> bool:
    try:
        return bool(Redis(unix_socket_path=str(path)).ping())
    except Exception:
        return False


def _claims(log: Path, job: str) -> tuple[set[int], set[int]]:
    """The create chunks of the job this host claimed, and those it created."""
    content = log.read_text(errors="replace")
    claimed = {int(c) for c in re.findall(rf"claimed kind=create\b[^\n]* job={job} chunk=(\d+)", content)}
    created = {int(c) for c in re.findall(rf"chunk created job={job} chunk=(\d+)", content)}
    return claimed, created


def _upload(web: Web, rows: int) -> str:
    lines = ["Username,Email"] + [f"mh{i:03d},mh{i:03d}@example.com" for i in range(rows)]
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n" + "\r\n".join(lines) + f"\r\n\r\n--{boundary}--\r\n"
    ).encode()
    status, data = web.call("POST", "/api/v1/uploads", body, f"multipart/form-data; boundary={boundary}")
    assert status == 201, data
    return json.loads(data)["upload_id"]


def test_a_worker_host_cut_off_mid_chunk_leaves_the_import_to_the_other(hosts, cluster):
    web: Web = cluster["web"]
    folder: Path = cluster["folder"]
    token = web.json("POST", "/api/v1/auth/token", {"tenant": "demo", "username": "admin",
                                                    "password": ADMIN_PASSWORD})["token"]  # fmt: skip
    web.headers = {"Authorization": f"Bearer {token}"}
    role = next(r["id"] for r in web.json("GET", "/api/v1/roles")["items"] if r["name"] == "Agent")
    start = {"upload_id": _upload(web, ROWS), "mapping": basic_mapping(role)}
    job = web.json("POST", "/api/v1/imports", start)["id"]
    log1, log2 = folder / "worker1.log", folder / "worker2.log"

    def worker1_mid_chunk() -> int | None:
        """A chunk worker1 holds now, once both hosts have claimed chunks of the import."""
        (claimed1, created1), (claimed2, _) = _claims(log1, job), _claims(log2, job)
        holding = claimed1 - created1
        return min(holding) if claimed2 and holding else None

    _until("both hosts claim chunks, worker1 holding one", worker1_mid_chunk, cluster["logs"])
    hosts.cut("worker1")
    claimed1_at_cut, created1_at_cut = _claims(log1, job)
    holding = claimed1_at_cut - created1_at_cut
    assert holding, "worker1 finished its chunk before the cut (the cut came too late to be mid-chunk)"
    held = min(holding)

    def final() -> dict[str, Any] | None:
        status = web.json("GET", f"/api/v1/imports/{job}")
        return status if status["status"] in ("succeeded", "failed", "cancelled") else None

    status = _until("the import ends on worker2", final, cluster["logs"])
    assert (status["status"], status["total"], status["processed"]) == ("succeeded", ROWS, ROWS), status
    assert (status["created"], status["duplicates"], status["errors"]) == (ROWS, 0, 0), status
    # worker1 created nothing after the cut; worker2 created the chunk worker1 was holding.
    assert _claims(log1, job)[1] == created1_at_cut
    assert held in _claims(log2, job)[1], f"chunk {held} was not finished by worker2"
    assert claimed1_at_cut and _claims(log2, job)[0], "both hosts claimed chunks"

    status_code, body = web.call("GET", f"/api/v1/imports/{job}/success.csv")
    assert status_code == 200
    listed = {row["Username"]: row["Temporary Password"] for row in parse_csv(body.decode("utf-8-sig"))}
    assert sorted(listed) == [f"mh{i:03d}" for i in range(ROWS)]
    with make_sessionmaker(cluster["engine"])() as session:
        users = {u.username: u for u in session.scalars(select(User).where(User.import_id == job))}
        rows = session.scalars(select(ImportRow).where(ImportRow.job_id == job)).all()
    assert len(users) == ROWS and len(rows) == ROWS
    assert {r.status for r in rows} == {RowStatus.CREATED}
    assert len({r.user_id for r in rows}) == ROWS  # every row counted once, each its own user
    settings: Settings = cluster["settings"]
    wrong = [name for name, password in listed.items()
             if not verify_password(settings, users[name].password_hash, password)]  # fmt: skip
    assert not wrong, f"passwords that do not verify: {wrong}"
    cluster["engine"].dispose()
