"""Undo an import and regenerate its passwords, through the API with a real worker, on both databases."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from sqlalchemy import delete, func, select, update

from shared.accounts.passwords import verify_password
from shared.imports import progress
from shared.imports.jobs import status_from_db
from shared.imports.regeneration import request_regeneration
from shared.imports.undo import request_undo
from shared.models import (
    ApiToken,
    AuditEvent,
    ImportJob,
    ImportRow,
    JobStatus,
    Role,
    Tenant,
    User,
    WebSession,
    utcnow,
)
from tests.support.builders import basic_mapping, parse_csv, to_csv
from worker.tasks import run_chunk, run_undo, run_validation


def people(prefix: str, count: int) -> bytes:
    rows = [{"Username": f"{prefix}{i}", "Email": f"{prefix}{i}@example.com"} for i in range(count)]
    return to_csv(rows, headers=["Username", "Email"])


def agent(imports) -> dict:
    return basic_mapping(imports.reference("roles")["Agent"])


def extensions(session, job_id: str) -> list[str]:
    session.expire_all()
    return sorted(session.scalars(select(User.extension).where(User.import_id == job_id)))


def demo(session) -> Tenant:
    return session.scalar(select(Tenant).where(Tenant.slug == "demo"))


def publish(sessions, settings, job_id: str) -> None:
    """What the web or a worker does after changing a job: tell its readers."""
    with sessions() as session:
        job = session.get(ImportJob, job_id)
        progress.publish(Redis.from_url(settings.redis_url), status_from_db(session, job), job.tenant_id)


def test_undo_removes_exactly_the_created_users_and_a_new_import_gets_their_extensions_back(
    imports, worker, session
):
    first = imports.run(people("first", 6), agent(imports))
    later = imports.run(people("later", 2), agent(imports))
    assert extensions(session, first["id"]) == [str(n) for n in range(1000, 1006)]
    assert extensions(session, later["id"]) == ["1006", "1007"]

    resp = imports.post(first["id"], "undo")
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["status"] in ("undoing", "undone")
    done = imports.wait_settled(first["id"])
    assert (done["status"], done["undone"], done["created"]) == ("undone", 6, 6)
    assert done["undone_at"] and "success" not in done["links"]
    session.expire_all()
    assert extensions(session, first["id"]) == []
    assert extensions(session, later["id"]) == ["1006", "1007"]  # only that import's users went
    assert session.scalar(select(func.count()).select_from(User)) == 1 + 2  # the admin and `later`
    assert imports.download(first["id"], "success")[0] == 410
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "import.undone"))
    admin = session.scalar(select(User).where(User.username == "admin"))
    assert (event.target, event.actor_id, event.details) == (first["id"], admin.id, {"users": 6})

    again = imports.post(first["id"], "undo")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "undo_not_allowed"
    assert "already undone" in again.get_json()["error"]["message"]

    refill = imports.run(people("refill", 7), agent(imports))
    assert extensions(session, refill["id"]) == ["1000", "1001", "1002", "1003", "1004", "1005", "1008"]


def test_undo_is_refused_while_the_import_runs_and_after_the_window(imports, worker, session, settings):
    from shared.imports.jobs import create_job

    upload = imports.upload(people("wait", 2)).get_json()
    queued = create_job(session, demo(session).id, None, upload["upload_id"], agent(imports), False)
    session.commit()  # no slot offered: it stays queued
    resp = imports.post(queued.id, "undo")
    assert resp.status_code == 409
    assert resp.get_json()["error"] == {
        "code": "undo_not_allowed",
        "message": "The import is still running; cancel it or wait for it to end, then undo it.",
        "details": None,
    }
    session.execute(delete(ImportJob).where(ImportJob.id == queued.id))
    session.commit()

    old = imports.run(people("old", 2), agent(imports))
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == old["id"])
        .values(finished_at=utcnow() - timedelta(hours=settings.undo_window_hours, minutes=1))
    )
    session.commit()
    late = imports.post(old["id"], "undo")
    assert late.status_code == 409
    assert "can be undone for 72 hours after it ends" in late.get_json()["error"]["message"]
    assert imports.status(old["id"])["status"] == "succeeded"


def test_undo_removes_edited_users_and_counts_only_those_that_still_exist(imports, worker, session):
    job = imports.run(people("kept", 5), agent(imports))
    session.execute(update(User).where(User.username == "kept0").values(username="renamed", first_name="Ed"))
    session.execute(delete(User).where(User.username.in_(["kept1", "kept2"])))
    session.commit()
    assert imports.post(job["id"], "undo").status_code == 202
    done = imports.wait_settled(job["id"])
    assert (done["status"], done["created"], done["undone"]) == ("undone", 5, 3)
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job["id"])) == 0
    assert session.scalar(select(User).where(User.username == "renamed")) is None


def test_a_redelivered_chunk_racing_the_undo_creates_nothing_again(imports, worker, sessions, settings):
    job = imports.run(people("race", 30), agent(imports))
    with sessions() as session:
        chunks = sorted(set(session.scalars(select(ImportRow.chunk).where(ImportRow.job_id == job["id"]))))
    assert imports.post(job["id"], "undo").status_code == 202

    # The import's messages come again while the worker undoes it: validation and every chunk.
    run_validation(sessions, settings, job["id"])
    for chunk in chunks:
        run_chunk(sessions, settings, job["id"], chunk)
    done = imports.wait_settled(job["id"])
    assert (done["status"], done["created"], done["undone"]) == ("undone", 30, 30)
    # The undo's own units run again: nothing is left to remove, the count stands.
    assert sum(run_undo(sessions, job["id"], chunk) for chunk in chunks) == 0
    for chunk in chunks:
        run_chunk(sessions, settings, job["id"], chunk)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job["id"])) == 0
    assert imports.status(job["id"])["undone"] == 30


def test_regenerate_makes_every_old_password_fail_and_every_new_one_verify(
    imports, worker, session, settings
):
    job = imports.run(people("regen", 7), agent(imports))
    old = {
        r["Username"]: r["Temporary Password"] for r in parse_csv(imports.download(job["id"], "success")[1])
    }
    assert imports.post(job["id"], "acknowledge").status_code == 200  # the admin lost the file
    assert imports.download(job["id"], "success")[0] == 410
    users = {u.username: u for u in session.scalars(select(User).where(User.import_id == job["id"]))}
    locked, signed_in = users["regen1"], users["regen2"]
    session.execute(
        update(User).where(User.id == locked.id).values(locked_at=utcnow(), must_change_password=False)
    )
    session.add(
        WebSession(
            id="s" * 64,
            user_id=signed_in.id,
            data={},
            idle_minutes=60,
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    session.add(ApiToken(user_id=signed_in.id, token_hash="t" * 64, expires_at=utcnow() + timedelta(hours=1)))
    session.execute(delete(User).where(User.username == "regen6"))  # removed by hand meanwhile
    session.commit()

    resp = imports.post(job["id"], "regenerate-passwords")
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["regenerating"] is True and "success" not in resp.get_json()["links"]
    done = imports.wait_settled(job["id"])
    assert (done["status"], done["regenerating"], done["regenerated"]) == ("succeeded", False, 6)
    assert done["passwords_destroyed"] is False and "success" in done["links"]
    code, text = imports.download(job["id"], "success")
    assert code == 200
    new = {r["Username"]: r["Temporary Password"] for r in parse_csv(text)}
    assert sorted(new) == [f"regen{i}" for i in range(6)]
    session.expire_all()
    for name, password in new.items():
        user = session.scalar(select(User).where(User.username == name))
        assert verify_password(settings, user.password_hash, password), name
        assert not verify_password(settings, user.password_hash, old[name]), name
        assert user.must_change_password is True and user.locked_at is None
    assert session.scalar(select(func.count()).select_from(WebSession)) == 0
    assert (
        session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == signed_in.id))
        == 0
    )
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.target == job["id"])))
    assert "import.passwords_regenerating" in actions and "import.passwords_regenerated" in actions


def test_regenerate_is_refused_while_an_undo_runs_and_undo_while_a_regeneration_runs(
    imports, worker, session, sessions, settings
):
    job = imports.run(people("both", 3), agent(imports))
    request_regeneration(session, demo(session).id, None, job["id"])
    session.commit()  # no slot offered: the regeneration waits
    publish(sessions, settings, job["id"])
    refused = imports.post(job["id"], "undo")
    assert (
        refused.status_code == 409
        and "New passwords are being made" in refused.get_json()["error"]["message"]
    )
    assert imports.post(job["id"], "acknowledge").get_json()["error"]["code"] == "passwords_regenerating"
    assert imports.download(job["id"], "success")[0] == 409
    session.execute(update(ImportJob).where(ImportJob.id == job["id"]).values(regenerating=False))
    session.commit()

    request_undo(session, settings, demo(session).id, None, job["id"])
    session.commit()  # no slot offered: the undo waits in `undoing`
    publish(sessions, settings, job["id"])
    assert imports.status(job["id"])["status"] == "undoing"
    resp = imports.post(job["id"], "regenerate-passwords")
    assert resp.status_code == 409
    assert resp.get_json()["error"] == {
        "code": "regenerate_not_allowed",
        "message": "This import is being undone: its users are being removed.",
        "details": None,
    }
    assert (
        imports.post(job["id"], "undo").get_json()["error"]["message"]
        == "This import is already being undone."
    )
    with sessions() as s:
        chunks = set(s.scalars(select(ImportRow.chunk).where(ImportRow.job_id == job["id"])))
    for chunk in chunks:  # as the worker would
        run_undo(sessions, job["id"], chunk)
    publish(sessions, settings, job["id"])
    assert imports.wait_settled(job["id"])["status"] == JobStatus.UNDONE
    after = imports.post(job["id"], "regenerate-passwords")
    assert after.status_code == 409 and "undone" in after.get_json()["error"]["message"]


def test_another_tenants_import_and_mapping_answer_404(imports, worker, client, session, settings):
    from shared.dialer.tenants import create_admin, create_tenant

    job = imports.run(people("mine", 2), agent(imports))
    saved = client.post(
        "/api/v1/mappings", headers=imports.auth, json={"name": "Mine", "mapping": agent(imports)}
    ).get_json()
    other = create_tenant(session, "other")
    create_admin(session, settings, other, "boss", "boss@other.example", "Other-Pass-1")
    session.commit()
    token = client.post(
        "/api/v1/auth/token", json={"tenant": "other", "username": "boss", "password": "Other-Pass-1"}
    ).get_json()["token"]
    theirs = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/imports/{job['id']}"
    for method, path, body in (
        ("post", f"{base}/undo", None),
        ("post", f"{base}/regenerate-passwords", None),
        ("get", f"{base}/rows?status=error", None),
        ("post", f"{base}/rows/2/check", {"values": {}}),
        ("post", f"{base}/retry", {"rows": []}),
        ("delete", f"/api/v1/mappings/{saved['id']}", None),
    ):
        resp = getattr(client, method)(path, headers=theirs, json=body)
        assert resp.status_code == 404, (path, resp.get_json())
        assert resp.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/mappings", headers=theirs).get_json() == {"items": []}
    assert imports.status(job["id"])["status"] == "succeeded"
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job["id"])) == 2
    assert session.scalar(select(Role.id).where(Role.tenant_id == other.id)) is not None


def test_progress_moves_from_succeeded_to_undoing_and_undone_and_never_back(redis_url):
    redis = Redis.from_url(redis_url)
    redis.delete(progress.hash_key("beyond-order"))

    def status(state: str, **more: object) -> dict:
        return {"id": "beyond-order", "status": state, "processed": 50, "total": 50} | more

    assert progress.publish(redis, status("succeeded"), 7)
    assert progress.publish(redis, status("succeeded", password_generation=1, regenerating=True), 7)
    assert progress.publish(
        redis, status("succeeded", password_generation=1, regenerating=True, regenerated=20), 7
    )
    # A late message from the regeneration's first chunk, then from before it started: both refused.
    assert not progress.publish(
        redis, status("succeeded", password_generation=1, regenerating=True, regenerated=5), 7
    )
    assert not progress.publish(redis, status("succeeded"), 7)
    assert progress.read(redis, "beyond-order", 7)["regenerated"] == 20
    assert progress.publish(redis, status("succeeded", password_generation=1, regenerated=50), 7)
    assert progress.publish(redis, status("undoing", password_generation=1, undone=0, regenerated=50), 7)
    assert progress.publish(redis, status("undoing", password_generation=1, undone=30, regenerated=20), 7)
    assert not progress.publish(redis, status("undoing", password_generation=1, undone=10, regenerated=40), 7)
    assert not progress.publish(redis, status("succeeded", password_generation=1, regenerated=50), 7)
    assert progress.publish(redis, status("undone", password_generation=1, undone=50), 7)
    assert not progress.publish(redis, status("undoing", password_generation=1, undone=50), 7)
    assert progress.read(redis, "beyond-order", 7)["status"] == "undone"
