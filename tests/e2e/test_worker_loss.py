"""A worker process killed in the middle of a chunk loses nothing: the chunk comes back."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from sqlalchemy import func, select

from shared.models import ImportRow, User
from shared.passwords import verify_password
from tests.builders import basic_mapping, parse_csv, to_csv
from tests.conftest import ImportActions, WorkerProcess


@pytest.fixture
def slow_world(clean_db, base_settings):
    """A worker of its own whose chunks take about a second (real argon2 cost, 40-row chunks)."""
    from web import create_app

    settings = base_settings.with_(
        argon2_memory_kib=19456,
        argon2_time_cost=2,
        chunk_size=40,
        task_queue=base_settings.task_queue + "-loss",
    )
    proc = WorkerProcess(settings, concurrency=1, name="loss")
    app = create_app(settings)
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": "Demo-Admin-Pass-1"}
    ).get_json()["token"]
    yield settings, proc, ImportActions(client, {"Authorization": f"Bearer {token}"})
    proc.stop()


def test_worker_process_killed_mid_chunk_loses_no_row_and_no_password(slow_world, session):
    settings, proc, imports = slow_world
    role = imports.reference("roles")["Agent"]
    rows = [{"Username": f"kill{i:03d}", "Email": f"kill{i:03d}@example.com"} for i in range(160)]
    mapping = basic_mapping(role)
    up = imports.upload(to_csv(rows, ["Username", "Email"])).get_json()
    job = imports.start(up["upload_id"], mapping).get_json()
    # Wait until the first chunk is done: the pool process is then hashing the second one.
    deadline = time.monotonic() + 60
    while imports.status(job["id"])["created"] < 40:
        assert time.monotonic() < deadline, imports.status(job["id"])
        time.sleep(0.05)
    children = psutil.Process(proc.proc.pid).children()
    assert children, "the worker has no pool process"
    os.kill(children[0].pid, signal.SIGKILL)
    final = imports.wait_done(job["id"], timeout=120)
    assert final["status"] == "succeeded", final
    assert (final["created"], final["duplicates"], final["errors"]) == (160, 0, 0)
    assert "WorkerLostError" in proc.log_path.read_text() or "SIGKILL" in proc.log_path.read_text()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job["id"])) == 160
    assert (
        session.scalar(
            select(func.count())
            .select_from(ImportRow)
            .where(ImportRow.job_id == job["id"], ImportRow.status == "created")
        )
        == 160
    )
    _, text = imports.download(job["id"], "success")
    lines = parse_csv(text)
    assert len(lines) == 160
    hashes = dict(session.execute(select(User.username, User.password_hash)).all())
    for line in lines[::16]:  # every tenth, at full argon2 cost
        assert verify_password(settings, hashes[line["Username"]], line["Temporary Password"])
