"""Reliability promises: concurrent imports, reruns, cancel, failure, expiry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from shared.files.uploads import store_upload
from shared.imports.jobs import create_job, errors_file, purge_expired_passwords, request_cancel
from shared.models import ImportJob, ImportRow, Tenant, Upload, User
from tests.support.actions import ImportActions
from tests.support.builders import basic_mapping, parse_csv, to_csv
from worker.slots import SLOT
from worker.tasks import run_chunk, run_slot, run_validation


def _rows(names) -> bytes:
    return to_csv([{"Username": n, "Email": f"{n}@example.com"} for n in names], ["Username", "Email"])


def test_two_overlapping_imports_at_once_create_no_user_or_extension_twice(imports, worker, session):
    role = imports.reference("roles")["Agent"]
    first = imports.upload(_rows([f"ov{i:03d}" for i in range(0, 150)])).get_json()
    second = imports.upload(_rows([f"ov{i:03d}" for i in range(100, 250)])).get_json()
    answers = {}

    def start(key: str, upload_id: str) -> None:
        answers[key] = imports.start(upload_id, basic_mapping(role)).get_json()["id"]

    threads = [
        threading.Thread(target=start, args=("a", first["upload_id"])),
        threading.Thread(target=start, args=("b", second["upload_id"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [imports.wait_done(answers[k]) for k in ("a", "b")]
    assert all(s["status"] == "succeeded" for s in done)
    assert sum(s["created"] for s in done) == 250
    assert sum(s["duplicates"] for s in done) == 50
    usernames = list(session.scalars(select(User.username).where(User.import_id.is_not(None))))
    extensions = list(session.scalars(select(User.extension)))
    assert len(usernames) == len(set(usernames)) == 250
    assert len(extensions) == len(set(extensions))


def _prepared_job(session, settings, names, chunk_size=None):
    """A validated job made through the domain alone (no worker picks it up)."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    admin = session.scalar(select(User).where(User.username == "admin"))
    upload, _ = store_upload(session, settings, tenant.id, admin.id, "users.csv", _rows(names))
    role_id = admin.role_id
    job = create_job(session, tenant.id, admin.id, upload.id, basic_mapping(role_id), dry_run=False)
    session.commit()
    return tenant, job.id


def drain(sessions, settings) -> list:
    """Run slots by hand until no work is left; returns what each did."""
    done = []
    while claim := run_slot(sessions, settings, f"hand-{len(done)}", lambda _n: None):
        done.append((claim.kind, claim.chunk))
    return done


def test_chunk_run_twice_by_hand_creates_nothing_new(session, sessions, settings):
    _, job_id = _prepared_job(session, settings, [f"tw{i}" for i in range(30)])
    assert drain(sessions, settings) == [("validate", 0), ("create", 0), ("create", 1), ("create", 2)]
    secrets_before = dict(session.execute(select(ImportRow.row_number, ImportRow.password_encrypted)).all())
    assert [run_chunk(sessions, settings, job_id, chunk) for chunk in range(3)] == [0, 0, 0]
    assert run_validation(sessions, settings, job_id) == []
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job_id)) == 30
    assert (
        dict(session.execute(select(ImportRow.row_number, ImportRow.password_encrypted)).all())
        == secrets_before
    )
    assert session.get(ImportJob, job_id).status == "succeeded"


def test_chunk_redelivered_before_finishing_creates_each_user_once(session, sessions, settings):
    _, job_id = _prepared_job(session, settings, [f"rd{i}" for i in range(9)])
    run_validation(sessions, settings, job_id)
    # The same message delivered twice, both copies running at once on two workers.
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(run_chunk(sessions, settings, job_id, 0)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 9]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job_id)) == 9
    statuses = set(session.scalars(select(ImportRow.status).where(ImportRow.job_id == job_id)))
    assert statuses == {"created"}


def test_cancel_stops_before_the_next_chunk(session, sessions, settings):
    tenant, job_id = _prepared_job(session, settings, [f"cx{i}" for i in range(9)])
    run_validation(sessions, settings, job_id)
    request_cancel(session, tenant.id, None, job_id)
    session.commit()
    assert run_chunk(sessions, settings, job_id, 0) == 0
    session.expire_all()
    assert session.get(ImportJob, job_id).status == "cancelled"
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job_id)) == 0
    rows = parse_csv(errors_file(session, settings, tenant.id, job_id).decode("utf-8-sig"))
    assert len(rows) == 9 and {r["Errors"] for r in rows} == {"Not created: the import was cancelled"}


def test_cancel_of_a_queued_import_ends_it_and_a_late_message_creates_nothing(
    base_settings, clean_db, worker, session
):
    from web import create_app
    from worker import create_celery

    # No worker consumes this queue, so the job is still queued when the admin cancels it.
    app = create_app(base_settings.with_(task_queue=base_settings.task_queue + "-idle"))
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": "Demo-Admin-Pass-1"}
    ).get_json()["token"]
    idle = ImportActions(client, {"Authorization": f"Bearer {token}"})
    up = idle.upload(_rows([f"ca{i}" for i in range(5)])).get_json()
    job = idle.start(up["upload_id"], basic_mapping(idle.reference("roles")["Agent"])).get_json()
    resp = client.post(f"/api/v1/imports/{job['id']}/cancel", headers=idle.auth)
    assert resp.status_code == 202 and resp.get_json()["status"] == "cancelled"
    again = client.post(f"/api/v1/imports/{job['id']}/cancel", headers=idle.auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_finished"
    # The message arrives late at a live worker: the job stays cancelled and creates nobody.
    sent = create_celery(base_settings).send_task(SLOT)
    deadline = time.monotonic() + 30
    while f"{SLOT}[{sent.id}] succeeded" not in worker.log_path.read_text():
        assert time.monotonic() < deadline, "the worker never ran the late message"
        time.sleep(0.1)
    assert idle.status(job["id"])["status"] == "cancelled"
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_job_whose_file_cannot_be_read_fails_with_the_reason(imports, worker, session):
    role = imports.reference("roles")["Agent"]
    up = imports.upload(_rows(["fx1", "fx2"])).get_json()
    session.execute(
        update(Upload).where(Upload.id == up["upload_id"]).values(content=b"\x89PNG\r\n\x1a\n\x00\x00")
    )
    session.commit()
    job = imports.start(up["upload_id"], basic_mapping(role)).get_json()
    final = imports.wait_done(job["id"])
    assert final["status"] == "failed"
    assert final["error"].startswith("This file is a PNG image")
    assert session.scalar(select(func.count()).select_from(User)) == 1
    # The worker is still alive and takes the next job.
    ok = imports.run(_rows(["fx3"]), basic_mapping(role))
    assert ok["status"] == "succeeded" and ok["created"] == 1


def test_passwords_expire_after_the_retention_period(imports, worker, session, settings):
    role = imports.reference("roles")["Agent"]
    status = imports.run(_rows(["ex1", "ex2"]), basic_mapping(role))
    job = session.get(ImportJob, status["id"])
    job.finished_at = job.finished_at - timedelta(hours=settings.password_retention_hours + 1)
    session.commit()
    assert purge_expired_passwords(session, settings) == 1
    session.commit()
    code, _ = imports.download(status["id"], "success")
    assert code == 410
    assert (
        session.scalar(
            select(func.count()).select_from(ImportRow).where(ImportRow.password_encrypted.is_not(None))
        )
        == 0
    )


def test_a_user_created_meanwhile_makes_only_its_row_a_duplicate(session, sessions, settings):
    tenant, job_id = _prepared_job(session, settings, [f"mw{i}" for i in range(9)])
    assert run_validation(sessions, settings, job_id) == [0]
    # Another import wins the race for one username after this one's duplicate check.
    admin = session.scalar(select(User).where(User.username == "admin"))
    session.add(
        User(
            tenant_id=tenant.id,
            username="MW4",
            email="winner@example.com",
            extension="8888",
            role_id=admin.role_id,
            password_hash="x",
        )
    )
    session.commit()
    assert run_chunk(sessions, settings, job_id, 0) == 8
    session.expire_all()
    rows = {r.username: r for r in session.scalars(select(ImportRow).where(ImportRow.job_id == job_id))}
    assert (rows["mw4"].status, rows["mw4"].messages) == ("duplicate", ['Username "mw4" already exists'])
    assert {r.status for name, r in rows.items() if name != "mw4"} == {"created"}
    assert all(r.password_encrypted for name, r in rows.items() if name != "mw4")
    assert session.get(ImportJob, job_id).status == "succeeded"
