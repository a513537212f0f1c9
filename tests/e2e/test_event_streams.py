"""Event streams as production serves them (gunicorn's uvicorn workers, web/asgi.py), on both databases.

Hundreds of open streams hold no thread, limits count across web processes, and a slow client
holds nothing another request needs (API.md "Fair use of the web"). The imports watched here are
held: a job in the database that no worker takes (the session's worker is paused), until the
test settles it the way a worker does, by storing and publishing its final status.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import select

from scripts.stream_client import open_many, open_stream, run, until_ended
from shared.accounts.tokens import issue_token
from shared.dialer.tenants import create_admin, create_tenant
from shared.imports import progress, stream_leases
from shared.imports.completion import fail_job
from shared.imports.jobs import create_job, status_from_db
from shared.models import ImportJob, User
from shared.settings import Settings
from tests.support.actions import ImportActions
from tests.support.builders import basic_mapping
from tests.support.web_server import WebServer
from tests.support.workers import PausedWorker

ANSWER_SECONDS = 10  # "answers at all": the suite never times anything closer than this


@pytest.fixture
def held_job(base_settings: Settings, imports, session) -> Iterator[str]:
    """A queued import that stays queued until the test settles it."""
    paused = PausedWorker(base_settings)
    try:
        upload = imports.upload(b"Username,Email\nheld1,held1@example.com\n").get_json()
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        role = next(iter(imports.reference("roles").values()))
        job = create_job(session, admin.tenant_id, admin.id, upload["upload_id"], basic_mapping(role), False)
        session.commit()
        yield job.id
    finally:
        paused.resume()


def settle(session, settings: Settings, job_id: str) -> dict:
    """End the job as a worker would: store the final status, then publish it."""
    fail_job(session, job_id, "Stopped by the test.")
    session.commit()
    job = session.get(ImportJob, job_id)
    session.refresh(job)
    status = status_from_db(session, job)
    progress.publish(Redis.from_url(settings.redis_url), status, job.tenant_id)
    return status


@pytest.fixture
def web(base_settings: Settings, clean_db) -> Iterator[WebServer]:
    server = WebServer(base_settings)
    yield server
    server.stop()


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_SECONDS) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def test_300_open_streams_leave_health_and_status_answering_then_all_end_with_the_final_status(
    base_settings, held_job, token, session
):
    server = WebServer(base_settings.with_(streams_per_user=400, streams_per_tenant=400), name="many")
    path = f"/api/v1/imports/{held_job}/events"

    async def scenario() -> None:
        streams = await open_many(server.port, path, [token] * 300)
        assert {s.status for s in streams} == {200}
        assert all(s.events[0]["status"] == "queued" for s in streams)
        health = await asyncio.to_thread(_get, f"{server.url}/healthz")
        status = await asyncio.to_thread(_get, f"{server.url}/api/v1/imports/{held_job}", token)
        assert health[0] == 200 and status[0] == 200 and status[1]["status"] == "queued"
        final = await asyncio.to_thread(settle, session, base_settings, held_job)
        await until_ended(streams)
        assert {json.dumps(s.events[-1], sort_keys=True) for s in streams} == {
            json.dumps(final, sort_keys=True)
        }
        assert final["status"] == "failed"

    try:
        run(scenario())
    finally:
        server.stop()
    client = Redis.from_url(base_settings.redis_url)
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    assert stream_leases.open_count(client, admin.tenant_id) == 0, "ended streams gave their places back"


def test_the_21st_stream_of_a_user_is_refused_across_two_web_processes_and_polling_still_answers(
    base_settings, held_job, token
):
    first, second = WebServer(base_settings, name="one"), WebServer(base_settings, name="two")
    path = f"/api/v1/imports/{held_job}/events"

    async def scenario() -> None:
        open_ = await open_many(first.port, path, [token] * 10) + await open_many(
            second.port, path, [token] * 10
        )
        assert {s.status for s in open_} == {200}
        for server in (first, second):
            refused = await open_stream(server.port, path, token)
            assert refused.status == 429
            assert int(refused.headers["retry-after"]) > 0
            assert json.loads(refused.body)["error"]["code"] == "too_many_streams"
            code, body = await asyncio.to_thread(_get, f"{server.url}/api/v1/imports/{held_job}", token)
            assert code == 200 and body["status"] == "queued"
        open_[0].close()  # a closed tab gives its place back
        for _attempt in range(200):
            again = await open_stream(second.port, path, token)
            if again.status == 200:
                break
            await asyncio.sleep(0.05)  # the server notices the closed connection on its next read
        assert again.status == 200

    try:
        run(scenario())
    finally:
        first.stop()
        second.stop()


def test_a_stream_on_a_finished_import_is_its_final_status(base_settings, held_job, token, session, web):
    final = settle(session, base_settings, held_job)

    async def scenario() -> None:
        (stream,) = await open_many(web.port, f"/api/v1/imports/{held_job}/events", [token])
        await until_ended([stream])
        assert stream.events == [final]

    run(scenario())


def test_slow_clients_hold_nothing_a_normal_request_needs(base_settings, clean_db):
    """Far more slow clients than the web has threads: headers a byte at a time, bodies that stall."""
    server = WebServer(base_settings.with_(web_threads=2, request_body_seconds=2), name="slow")
    slow: list[socket.socket] = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_SECONDS)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # and never the rest of the headers
            slow.append(s)
        stalled = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_SECONDS)
            s.sendall(b"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npart")
            stalled.append(s)
        assert _get(f"{server.url}/healthz")[0] == 200
        answer = stalled[0].makefile("rb").read().decode()  # the stalled body is let go, and told why
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "request_timeout" in answer
        slow += stalled
    finally:
        for s in slow:
            s.close()
        server.stop()


def test_a_lease_of_a_process_that_died_lapses(base_settings, clean_db):
    """Places are leases: a web process killed with its streams open frees them once they lapse."""
    client = Redis.from_url(base_settings.redis_url)
    leases = [stream_leases.acquire(client, 7, "9", 2, 10) for _ in range(2)]
    with pytest.raises(stream_leases.StreamsFull) as full:
        stream_leases.acquire(client, 7, "9", 2, 10)
    assert full.value.whose == "user"
    for lease in leases:  # as if their renewals had stopped a lease's length ago
        client.zadd(lease.user_key, {lease.member: 1})
        client.zadd(lease.tenant_key, {lease.member: 1})
    stream_leases.release(client, [stream_leases.acquire(client, 7, "9", 2, 10)])
    assert stream_leases.open_count(client, 7) == 0


def test_uploads_and_starts_are_limited_per_tenant(base_settings, clean_db, session):
    from web import create_app
    from web.security import limiter

    settings = base_settings.with_(uploads_per_minute=3, import_starts_per_minute=2)
    app = create_app(settings)
    with app.app_context():
        limiter.reset()  # tenant ids repeat across tests: no earlier test's count in this minute
    client = app.test_client()

    def admin_of(slug: str) -> ImportActions:
        tenant = create_tenant(session, slug)
        session.flush()
        boss = create_admin(session, settings, tenant, "boss", f"boss@{slug}.example", "Limit-Pass-1")
        session.flush()
        token = issue_token(session, settings, boss)[0]
        session.commit()
        return ImportActions(client, {"Authorization": f"Bearer {token}"})

    def refused(answer) -> None:
        assert answer.status_code == 429, answer.get_json()
        assert answer.get_json()["error"]["code"] == "too_many_requests"
        assert int(answer.headers["Retry-After"]) > 0

    busy, calm = admin_of("busy"), admin_of("calm")
    data = b"Username,Email\nlim1,lim1@example.com\n"
    uploads = [busy.upload(data) for _ in range(3)]
    assert [a.status_code for a in uploads] == [201, 201, 201]
    refused(busy.upload(data))
    assert calm.upload(data).status_code == 201  # the other tenant's uploads are its own

    role = next(iter(busy.reference("roles").values()))
    upload_id = uploads[0].get_json()["upload_id"]
    starts = [busy.start(upload_id, basic_mapping(role), dry_run=True) for _ in range(2)]
    assert [a.status_code for a in starts] == [202, 202]
    refused(busy.start(upload_id, basic_mapping(role), dry_run=True))
    calm_role = next(iter(calm.reference("roles").values()))
    calm_upload = calm.upload(data).get_json()["upload_id"]
    assert calm.start(calm_upload, basic_mapping(calm_role), dry_run=True).status_code == 202
    # Over its limit, the busy tenant still reads what it started.
    assert client.get(starts[0].headers["Location"], headers=busy.auth).status_code == 200
