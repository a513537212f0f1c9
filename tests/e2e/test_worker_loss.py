"""A worker process killed inside a chunk's transaction loses nothing: the chunk comes back whole."""

from __future__ import annotations

import psutil
from sqlalchemy import func, select

from shared.accounts.passwords import verify_password
from shared.models import ImportRow, User
from tests.support.builders import basic_mapping, parse_csv, to_csv

MAX_CHUNK = 40
ROWS = 160


def test_pool_process_killed_inside_a_chunk_transaction_loses_no_row_and_no_password(hooked_world, session):
    # The second chunk blocks at its first flush of a created row, its transaction open.
    world = hooked_world({"HOOK_HOLD_CHUNK": "1"}, chunk_size=MAX_CHUNK)
    imports = world.imports
    rows = [{"Username": f"kill{i:03d}", "Email": f"kill{i:03d}@example.com"} for i in range(ROWS)]
    up = imports.upload(to_csv(rows, ["Username", "Email"])).get_json()
    job = imports.start(up["upload_id"], basic_mapping(imports.reference("roles")["Agent"])).get_json()

    pid = world.wait_held()
    holder = psutil.Process(pid)
    assert holder in psutil.Process(world.worker.proc.pid).children(recursive=True)
    # Chunk 0 is committed; chunk 1 has written users that nobody else can see yet.
    first_chunk = session.scalar(
        select(func.count()).select_from(ImportRow).where(ImportRow.job_id == job["id"], ImportRow.chunk == 0)
    )
    committed = select(func.count()).select_from(User).where(User.import_id == job["id"])
    assert 0 < session.scalar(committed) == first_chunk < ROWS
    holder.kill()  # SIGKILL: no cleanup runs in the process
    holder.wait(timeout=30)

    final = imports.wait_done(job["id"], timeout=120)
    assert final["status"] == "succeeded", final
    assert (final["processed"], final["created"], final["duplicates"], final["errors"]) == (ROWS, ROWS, 0, 0)
    assert "WorkerLostError" in world.worker.log_path.read_text()
    session.expire_all()
    # Every row counted once, no user twice.
    statuses = session.execute(
        select(ImportRow.row_number, ImportRow.status).where(ImportRow.job_id == job["id"])
    ).all()
    assert sorted(n for n, _ in statuses) == list(range(2, ROWS + 2))
    assert {s for _, s in statuses} == {"created"}
    users = dict(
        session.execute(select(User.username, User.password_hash).where(User.import_id == job["id"])).all()
    )
    assert sorted(users) == sorted(r["Username"] for r in rows)
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job["id"])) == ROWS
    # Every created user's password is in success.csv and opens that user's account.
    status, text = imports.download(job["id"], "success")
    assert status == 200
    lines = parse_csv(text)
    assert sorted(line["Username"] for line in lines) == sorted(users)
    for line in lines:
        password = line["Temporary Password"]
        assert verify_password(world.settings, users[line["Username"]], password), line["Row"]
