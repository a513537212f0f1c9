"""While the database or Redis is down, the API answers 503 with the JSON error body and /readyz
names what is down; a status read without Redis falls back to the database."""

from __future__ import annotations

import socket

import pytest

from tests.support.builders import basic_mapping, to_csv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def no_database(base_settings, clean_db, tmp_path):
    from web import create_app

    # A database the web cannot open: the same OperationalError a stopped server gives.
    gone = base_settings.with_(database_url=f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    return create_app(gone).test_client()


def test_api_answers_503_with_the_json_body_while_the_database_is_down(no_database):
    answer = no_database.get("/api/v1/roles", headers={"Authorization": "Bearer whatever"})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "30"
    ready = no_database.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"].startswith("error")
    assert "database" in ready.get_json()["missing"]


def test_without_redis_status_comes_from_the_database_and_readyz_names_redis(
    base_settings, clean_db, imports, worker
):
    from web import create_app

    role = imports.reference("roles")["Agent"]
    done = imports.run(
        to_csv([{"Username": "rd1", "Email": "rd1@example.com"}], ["Username", "Email"]), basic_mapping(role)
    )
    no_redis = create_app(
        base_settings.with_(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    ).test_client()
    status = no_redis.get(f"/api/v1/imports/{done['id']}", headers=imports.auth)
    assert status.status_code == 200 and status.get_json()["status"] == "succeeded"
    ready = no_redis.get("/readyz")
    assert ready.status_code == 503 and "redis" in ready.get_json()["missing"]
