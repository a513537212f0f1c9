"""Each web process trusts the tokens it checked lately only while the access stamp stands.

Two apps stand for two web processes: each has its own token cache, engine and Redis client,
and they share the database and Redis. A change made in one process (or in the worker) must be
refused at once by the other, which had the token in its cache. Real parts: SQLite and
PostgreSQL, Redis, a Celery worker for the import and its undo.
"""

from __future__ import annotations

import csv
import io

import pytest
from redis import Redis
from sqlalchemy import event, select

from shared.accounts import access_stamp
from shared.models import User
from tests.support.accounts import NEW_PASSWORD, TEMP_PASSWORD, add_user, creds, wait_until
from tests.support.builders import basic_mapping
from web import create_app

TOKEN = "/api/v1/auth/token"
ROLES = "/api/v1/roles"


@pytest.fixture
def other(app, base_settings):
    """A second web process: its own app, cache, engine and Redis client."""
    second = create_app(base_settings)
    second.config.update(TESTING=True)
    yield second
    second.extensions["db_engine"].dispose()


def bearer(client, username: str, password: str = TEMP_PASSWORD) -> dict[str, str]:
    resp = client.post(TOKEN, json=creds(username, password))
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def cached(app) -> int:
    return len(app.extensions["token_cache"])


def statements(app) -> list[str]:
    """Every SQL statement the app's engine sends from now on."""
    seen: list[str] = []
    event.listen(app.extensions["db_engine"], "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_status_read_by_a_known_token_sends_nothing_to_the_database(client, auth, imports, app, worker):
    job = imports.run(
        b"Username,Email\ncara,cara@demo.example\n", basic_mapping(imports.reference("roles")["Agent"])
    )
    assert job["status"] == "succeeded"
    path = f"/api/v1/imports/{job['id']}"
    assert client.get(path, headers=auth).get_json() == job  # checks the token, caches it
    sent = statements(app)
    answers = [client.get(path, headers=auth) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.get_json() == job for a in answers)
    assert sent == []  # neither the token nor the status was asked of the database


def test_a_token_revoked_in_one_process_is_refused_at_once_by_another(client, auth, other):
    second = other.test_client()
    assert second.get(ROLES, headers=auth).status_code == 200
    assert cached(other) == 1
    assert client.delete(TOKEN, headers=auth).status_code == 204
    refused = second.get(ROLES, headers=auth)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"


def test_a_user_locked_in_one_process_is_refused_at_once_by_another(client, other, session, settings):
    add_user(session, settings, "lena", lock_after_failed_logins=2)
    headers = bearer(client, "lena")
    second = other.test_client()
    assert second.get(ROLES, headers=headers).status_code == 200
    for _ in range(2):
        assert client.post(TOKEN, json=creds("lena", "wrong-password")).status_code == 401
    assert session.scalar(select(User.locked_at).where(User.username == "lena")) is not None
    assert second.get(ROLES, headers=headers).status_code == 401


def test_a_password_reset_in_one_process_ends_the_token_in_another(client, auth, other, session, settings):
    user = add_user(session, settings, "rita")
    headers = bearer(client, "rita")
    second = other.test_client()
    assert second.get(ROLES, headers=headers).status_code == 200
    assert client.post(f"/api/v1/users/{user.id}/reset-password", headers=auth).status_code == 200
    assert second.get(ROLES, headers=headers).status_code == 401
    assert second.get(ROLES, headers=auth).status_code == 200  # the resetting admin's own token stands


def test_an_undo_in_the_worker_ends_the_tokens_of_the_users_it_removes(client, imports, other, worker):
    admin_role = imports.reference("roles")["Admin"]
    mapping = basic_mapping(admin_role) | {"security": {"force_password_change": True}}
    job = imports.run(b"Username,Email\numa,uma@demo.example\n", mapping)
    assert job["status"] == "succeeded", job
    _, success = imports.download(job["id"], "success")
    temp = next(csv.DictReader(io.StringIO(success)))["Temporary Password"]
    resp = client.post(TOKEN, json=creds("uma", temp, new_password=NEW_PASSWORD))
    assert resp.status_code == 200, resp.get_json()
    headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    second = other.test_client()
    assert second.get(ROLES, headers=headers).status_code == 200

    assert imports.post(job["id"], "undo").status_code == 202
    assert imports.wait_settled(job["id"])["status"] == "undone"
    # The worker renews the stamp just after its commit, which the status may show first; well
    # before the cache's 10 s recheck, so only the stamp can end the entry this soon.
    wait_until(lambda: second.get(ROLES, headers=headers).status_code == 401, timeout=2)


def test_without_the_stamp_nothing_cached_is_trusted(client, auth, app, base_settings):
    redis = Redis.from_url(base_settings.redis_url)
    assert client.get(ROLES, headers=auth).status_code == 200
    sent = statements(app)
    assert client.get(ROLES, headers=auth).status_code == 200
    assert not any("api_tokens" in s for s in sent)  # the cache answered
    redis.delete(access_stamp.KEY)  # as after a Redis restarted empty
    assert client.get(ROLES, headers=auth).status_code == 200
    assert any("api_tokens" in s for s in sent)  # checked in the database again
    assert redis.get(access_stamp.KEY) is not None  # under a new stamp
