"""Retention (API.md "Retention", DESIGN.md "Data lifecycle"), on both databases with the real worker:
past retention the file's bytes and the rows' values are gone and every answer says so; within the
windows undo, retry and regeneration work; the purge goes in batches; a year stays its size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from shared.models import AuditEvent, ImportJob, ImportRow, JobStatus, RowStatus, Upload, User, utcnow
from tests.support.accounts import ADMIN_PASSWORD, page_login, wait_until
from tests.support.builders import basic_mapping, to_csv
from worker import create_celery
from worker.app import PURGE
from worker.tasks import run_purge

HEADERS = ["Username", "Email"]


def team(prefix: str, count: int, broken: dict[int, dict[str, str]] | None = None) -> bytes:
    rows = [{"Username": f"{prefix}{i}", "Email": f"{prefix}{i}@example.com"} | (broken or {}).get(i, {})
            for i in range(count)]  # fmt: skip
    return to_csv(rows, headers=HEADERS)


def agent(imports) -> dict:
    return basic_mapping(imports.reference("roles")["Agent"])


def age(sessions, job_id: str, days: float) -> None:
    """Move the import's end (and its upload) `days` into the past."""
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id)
        job.finished_at = utcnow() - timedelta(days=days)
        session.execute(update(Upload).where(Upload.id == job.upload_id).values(created_at=job.finished_at))


def purge_by_worker(settings, sessions, job_id: str) -> None:
    """Send the beat's purge task to the real worker and wait for the import's rows to expire."""
    create_celery(settings).send_task(PURGE)

    def expired() -> bool:
        with sessions() as session:
            job = session.get(ImportJob, job_id)
            return job.row_data_expired_at is not None and job.upload.content_expired_at is not None

    wait_until(expired, timeout=60)


def error_code(resp) -> tuple[int, str]:
    return resp.status_code, resp.get_json()["error"]["code"]


def test_past_retention_the_file_and_values_are_gone_and_every_answer_says_so(
    imports, worker, sessions, settings, client
):
    job = imports.run(
        team("gone", 4, {1: {"Email": "not-an-email"}, 3: {"Username": "gone0"}}), agent(imports)
    )
    assert (job["created"], job["errors"], job["duplicates"]) == (2, 1, 1)
    assert imports.download(job["id"], "errors")[0] == 200
    base = f"/api/v1/imports/{job['id']}"
    assert client.get(base + "/rows", headers=imports.auth).status_code == 200
    upload = client.get(f"/api/v1/uploads/{job['upload_id']}", headers=imports.auth).get_json()
    assert upload["content_expired"] is False and upload["preview"]

    age(sessions, job["id"], days=settings.row_data_retention_days + 1)
    purge_by_worker(settings, sessions, job["id"])

    with sessions() as session:
        assert session.get(Upload, job["upload_id"]).content == b""
        rows = session.scalars(select(ImportRow).where(ImportRow.job_id == job["id"])).all()
        assert len(rows) == 4
        for row in rows:  # only the outcome and the user stay: no value, message or password
            assert (row.data, row.username, row.email, row.sip, row.messages, row.password_encrypted) == (
                None, None, None, None, [], None,
            )  # fmt: skip
        assert session.scalar(select(func.count()).where(User.import_id == job["id"])) == 2

    upload = client.get(f"/api/v1/uploads/{job['upload_id']}", headers=imports.auth).get_json()
    assert (upload["content_expired"], upload["preview"], upload["filename"]) == (True, [], "users.csv")
    assert error_code(client.get(base + "/errors.csv", headers=imports.auth)) == (410, "row_data_expired")
    assert error_code(client.get(base + "/rows", headers=imports.auth)) == (410, "row_data_expired")
    assert error_code(imports.post(job["id"], "retry")) == (410, "row_data_expired")
    check = imports.post(job["id"], "rows/3/check", {"values": {"Email": "ok@example.com"}})
    assert error_code(check) == (410, "row_data_expired")
    assert "ROW_DATA_RETENTION_DAYS" in check.get_json()["error"]["message"]
    assert error_code(imports.post(job["id"], "regenerate-passwords")) == (409, "regenerate_not_allowed")
    assert error_code(client.get(base + "/success.csv", headers=imports.auth)) == (410, "passwords_destroyed")
    again = imports.start(job["upload_id"], agent(imports))
    assert error_code(again) == (410, "content_expired")

    status = imports.status(job["id"])  # counts, who ran it and when stay
    assert status["row_data_expired"] is True
    assert (status["created"], status["errors"], status["duplicates"], status["total"]) == (2, 1, 1, 4)
    assert (status["created_by"], status["filename"]) == ("admin", "users.csv") and status["finished_at"]

    assert page_login(client, "admin", password=ADMIN_PASSWORD).status_code == 302
    html = client.get(f"/imports/{job['id']}").get_data(as_text=True)
    note = html.split('id="data-expired"', 1)[1].split("</p>", 1)[0]
    assert "hidden" not in note.split(">", 1)[0]
    assert "were deleted" in note and "the users it created stay" in note


def test_within_the_windows_undo_retry_and_regeneration_still_work(imports, worker, sessions, settings):
    recent = imports.run(team("recent", 3), agent(imports))
    kept = imports.run(team("kept", 3, {2: {"Email": "bad"}}), agent(imports))
    age(sessions, recent["id"], days=settings.undo_window_hours / 24 - 0.5)
    age(sessions, kept["id"], days=settings.row_data_retention_days - 1)
    report = run_purge(sessions, settings)
    assert report.removed["row_data"] == report.removed["upload_contents"] == 0

    undone = imports.post(recent["id"], "undo")
    assert undone.status_code == 202, undone.get_json()
    assert imports.wait_settled(recent["id"])["status"] == "undone"

    assert imports.download(kept["id"], "errors")[0] == 200
    regenerated = imports.post(kept["id"], "regenerate-passwords")
    assert regenerated.status_code == 202, regenerated.get_json()
    assert imports.wait_settled(kept["id"])["regenerated"] == 2
    status, body = imports.download(kept["id"], "success")
    assert status == 200 and "kept0" in body  # the row values success.csv shows are still there
    retry = imports.post(
        kept["id"], "retry", {"rows": [{"row": 4, "values": {"Email": "kept2@example.com"}}]}
    )
    assert retry.status_code == 202, retry.get_json()
    assert imports.wait_done(retry.get_json()["id"])["created"] == 1


def test_the_purge_runs_in_bounded_batches_on_a_large_table(session, sessions, settings, engine):
    jobs = add_history(session, days=[settings.row_data_retention_days + 2] * 3, rows=1200)
    commits: list[int] = []
    cleared: list[int] = []  # rows each UPDATE of import_rows touched

    def on_commit(_conn) -> None:
        commits.append(1)

    def on_execute(_conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("UPDATE IMPORT_ROWS"):
            cleared.append(cursor.rowcount)

    counted = purged_counts()
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "after_cursor_execute", on_execute)
    try:
        first = run_purge(sessions, settings, batch=500, budget=2000)
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "after_cursor_execute", on_execute)
    assert len(commits) == first.transactions >= 4  # one commit a batch, counted by the database driver
    assert cleared and max(cleared) <= 500 and sum(cleared) < 2000 + 1
    # A run stops at its budget (rows touched; the last batch may also mark its imports expired) and
    # leaves the rest for the next one.
    assert 2000 <= sum(first.removed.values()) <= 2000 + len(jobs)
    # user_import_purged_total{what} moved by what the run removed, step by step
    assert {k: v - counted[k] for k, v in purged_counts().items()} == first.removed
    marked = expired_jobs(sessions, jobs)
    assert left_with_values(sessions, jobs) == 3 * 1200 - (first.removed["row_data"] - marked) > 0

    second = run_purge(sessions, settings, batch=500)
    assert second.transactions >= 4
    assert left_with_values(sessions, jobs) == 0
    assert expired_jobs(sessions, jobs) == 3


def test_the_purge_gives_way_to_import_work_and_goes_on_after_it(session, sessions, settings):
    """Retention can wait, an import cannot: with a unit of work pending, a run stops before its
    first retention batch; once the work is done the next run purges."""
    from shared.imports.scheduling import add_work
    from shared.models import WorkItem, WorkKind

    jobs = add_history(session, days=[settings.row_data_retention_days + 2], rows=30)
    add_work(session, session.get(ImportJob, jobs[0]), WorkKind.CREATE)  # as if an import ran now
    session.commit()
    held = run_purge(sessions, settings)
    assert held.yielded and held.removed["row_data"] == 0
    assert left_with_values(sessions, jobs) == 30
    with sessions.begin() as s:
        s.execute(WorkItem.__table__.delete())
    done = run_purge(sessions, settings)
    assert not done.yielded and left_with_values(sessions, jobs) == 0


def purged_counts() -> dict[str, float]:
    from prometheus_client import REGISTRY

    from shared.metrics import PURGED_KINDS

    return {k: REGISTRY.get_sample_value("user_import_purged_total", {"what": k}) or 0 for k in PURGED_KINDS}


def expired_jobs(sessions, jobs: list[str]) -> int:
    with sessions() as s:
        return s.scalar(
            select(func.count()).where(ImportJob.id.in_(jobs), ImportJob.row_data_expired_at.is_not(None))
        )


def left_with_values(sessions, jobs: list[str]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).where(ImportRow.job_id.in_(jobs), ImportRow.email.is_not(None)))


def add_history(session: Session, days: list[float], rows: int, now=None) -> list[str]:
    """Imports that ended `days` ago, each with `rows` rows holding values, an upload and an audit event."""
    from shared.models import Tenant

    now = now or utcnow()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    ids = []
    for ago in days:
        ended = now - timedelta(days=ago)
        upload = Upload(
            tenant_id=tenant.id, filename="old.csv", format="csv", size=10, content=b"Username\nold\n" * 20,
            headers=HEADERS, row_count=rows, created_at=ended,
        )  # fmt: skip
        session.add(upload)
        session.flush()
        job = ImportJob(
            tenant_id=tenant.id, upload_id=upload.id, status=JobStatus.SUCCEEDED, mapping={}, total=rows,
            created_at=ended, started_at=ended, finished_at=ended,
        )  # fmt: skip
        session.add(job)
        session.flush()
        session.execute(
            ImportRow.__table__.insert(),
            [
                {
                    "job_id": job.id, "row_number": n + 2, "chunk": 0, "status": RowStatus.ERROR.value,
                    "messages": ["Email is not valid"], "username": f"old{n}", "email": f"old{n}@example.com",
                    "data": {"username": f"old{n}"}, "password_generation": 0,
                }
                for n in range(rows)
            ],
        )  # fmt: skip
        session.add(AuditEvent(tenant_id=tenant.id, action="import.started", target=job.id, created_at=ended))
        ids.append(job.id)
    session.commit()
    return ids


def sqlite_files(settings) -> bytes:
    """The raw bytes of the SQLite database, its write-ahead log and its shared memory."""
    from pathlib import Path

    db = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def ciphertexts(sessions, job_id: str) -> list[bytes]:
    with sessions() as s:
        found = s.scalars(select(ImportRow.password_encrypted).where(ImportRow.job_id == job_id)).all()
    return [c for c in found if c]


def still_on_disk(settings, secrets: list[bytes]) -> int:
    raw = sqlite_files(settings)
    # Past each token's version and time (which tokens share): any 24 bytes of its IV, ciphertext or MAC.
    return sum(1 for c in secrets if any(c[i : i + 24] in raw for i in range(16, len(c) - 24, 12)))


def test_destroyed_passwords_leave_every_sqlite_file(imports, worker, sessions, settings):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite files; on PostgreSQL the values are NULLed (above) and VACUUM reclaims them")
    continued = imports.run(team("cont", 20), agent(imports))
    first = ciphertexts(sessions, continued["id"])
    assert len(first) == 20 and still_on_disk(settings, first) == 20  # the search finds what is there
    assert imports.post(continued["id"], "acknowledge").status_code == 200
    assert still_on_disk(settings, first) == 0

    regenerated = imports.run(team("regen", 20), agent(imports))
    before = ciphertexts(sessions, regenerated["id"])
    assert imports.post(regenerated["id"], "regenerate-passwords").status_code == 202
    assert still_on_disk(settings, before) == 0
    assert imports.wait_settled(regenerated["id"])["regenerated"] == 20
    after = ciphertexts(sessions, regenerated["id"])
    assert len(after) == 20 and not set(after) & set(before)

    line = b"regen7,regen7@example.com"  # a line of the file (the users table holds no such line)
    assert line in sqlite_files(settings)
    age(sessions, regenerated["id"], days=settings.row_data_retention_days + 1)
    with sessions.begin() as s:  # the regenerated passwords' own retention has not run out
        s.get(ImportJob, regenerated["id"]).passwords_regenerated_at = utcnow()
    purge_by_worker(settings, sessions, regenerated["id"])
    assert ciphertexts(sessions, regenerated["id"]) == []
    wait_until(lambda: still_on_disk(settings, after) == 0, timeout=30)
    assert line not in sqlite_files(settings)  # nor the file's bytes, in free pages or the log


def test_sqlite_connections_overwrite_what_they_delete(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite pragma")
    with engine.connect() as conn:  # (many builds default to 0: freed pages would keep their bytes)
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1


def test_a_year_of_imports_leaves_only_what_retention_keeps(session, sessions, settings):
    """An import a week for 400 days, the purge run each of those days: the tables stay their size."""
    step, days = 7, 400
    start = utcnow() - timedelta(days=days)
    first = add_history(session, days=[0], rows=5, now=start)[0]
    admin = session.scalar(select(User).where(User.username == "admin"))
    admin.import_id = first  # a user the first import made: it stays when the import's record goes
    session.commit()
    most = 0
    for day in range(step, days, step):
        today = start + timedelta(days=day)
        add_history(session, days=[0], rows=5, now=today)
        run_purge(sessions, settings, now=today)
        with sessions() as s:
            most = max(most, s.scalar(select(func.count()).select_from(ImportJob)))
    last = today  # the last simulated day
    kept = {  # imports that ended within each retention of the last day
        name: sum(1 for d in range(0, days, step) if start + timedelta(days=d) >= last - timedelta(days=n))
        for name, n in (
            ("history", settings.audit_retention_days),
            ("rows", settings.row_data_retention_days),
        )
    }
    with sessions() as s:
        count = lambda *where, of=ImportJob: s.scalar(select(func.count()).select_from(of).where(*where))  # noqa: E731
        assert count() == most == kept["history"]
        assert count(of=ImportRow) == 5 * kept["history"]
        assert count(ImportRow.email.is_not(None), of=ImportRow) == 5 * kept["rows"]
        assert count(Upload.content_expired_at.is_(None), of=Upload) == kept["rows"]
        assert count(of=Upload) == kept["history"]
        assert count(AuditEvent.action == "import.started", of=AuditEvent) == kept["history"]
        assert s.get(User, admin.id).import_id is None and s.get(ImportJob, first) is None
